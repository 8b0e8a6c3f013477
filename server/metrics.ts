/** Prometheus metrics (prom-client), one registry per app so in-process tests can run several. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Live values read at scrape time (no inc/dec bookkeeping to drift). */
export interface MetricSources {
  connectedSockets(): number;
  revocationInSync(): boolean;
  revocationMarks(): number;
}

/**
 * `sources` may be given later with `readFrom` (the parts they read are built after the metrics,
 * which those parts count into); until then the gauges read 0.
 */
export function createMetrics(nodeId: string, initial: Partial<MetricSources> = {}) {
  const sources: MetricSources = { connectedSockets: () => 0, revocationInSync: () => false, revocationMarks: () => 0, ...initial };
  const registry = new Registry();
  registry.setDefaultLabels({ node: nodeId });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    /** Registers where the live gauges read from. */
    readFrom(more: Partial<MetricSources>): void {
      Object.assign(sources, more);
    },
    connectedSockets: new Gauge({
      name: "gatehouse_connected_sockets",
      help: "Live authenticated sockets on this node",
      registers: [registry],
      collect() {
        this.set(sources.connectedSockets());
      },
    }),
    handshakes: new Counter({
      name: "gatehouse_handshakes_total",
      help: "socket.io handshakes by result code (ok or an error code)",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    revocations: new Counter({
      name: "gatehouse_revocations_total",
      help: "Revocation events applied on this node, by reason and source (local or feed)",
      labelNames: ["reason", "source"] as const,
      registers: [registry],
    }),
    revocationsUnconfirmed: new Counter({
      name: "gatehouse_revocation_confirmations_missing_total",
      help: "Nodes that received a revocation issued here but did not confirm applying it in time (the 2xx waited, then went out anyway)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    feedRejected: new Counter({
      name: "gatehouse_revocation_feed_rejected_total",
      help: "Messages on the revocation feed's channels dropped as malformed or hostile (never applied)",
      registers: [registry],
    }),
    forcedDisconnects: new Counter({
      name: "gatehouse_forced_disconnects_total",
      help: "Sockets disconnected by the server, by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: "gatehouse_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["method", "route", "status"] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "gatehouse_http_request_duration_seconds",
      help: "HTTP request duration by route",
      labelNames: ["method", "route"] as const,
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    revocationInSync: new Gauge({
      name: "gatehouse_revocation_in_sync",
      help: "1 when the revocation cache is in sync with the store",
      registers: [registry],
      collect() {
        this.set(sources.revocationInSync() ? 1 : 0);
      },
    }),
    revocationMarks: new Gauge({
      name: "gatehouse_revocation_marks",
      help: "Live revocation marks held in memory",
      registers: [registry],
      collect() {
        this.set(sources.revocationMarks());
      },
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
