/** /healthz, /readyz, /metrics. */
import { Router } from "express";
import { ErrorCode } from "../../shared/errors";
import type { Metrics } from "../metrics";
import { sendError } from "./errors";
import { sendJson } from "./send-json";

export interface Readiness {
  /** null when ready, else why not */
  notReadyReason(): Promise<string | null>;
}

export function opsRoutes(d: { metrics: Metrics; readiness: Readiness; nodeId: string }): Router {
  const r = Router();
  r.get("/healthz", (_req, res) => {
    sendJson(res, 200, { status: "ok", nodeId: d.nodeId });
  });
  r.get("/readyz", async (_req, res) => {
    const reason = await d.readiness.notReadyReason();
    if (reason) return sendError(res, ErrorCode.REVOCATION_UNAVAILABLE, reason);
    sendJson(res, 200, { status: "ready", nodeId: d.nodeId });
  });
  r.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", d.metrics.registry.contentType);
    res.send(await d.metrics.registry.metrics());
  });
  return r;
}
