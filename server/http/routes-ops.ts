/** /healthz, /readyz, /metrics. */
import { Router } from "express";
import { ErrorCode } from "../../shared/errors";
import type { Metrics } from "../metrics";
import { sendError } from "./errors";

export interface Readiness {
  /** null when ready, else why not */
  notReadyReason(): Promise<string | null>;
}

export function opsRoutes(d: { metrics: Metrics; readiness: Readiness; nodeId: string }): Router {
  const r = Router();
  r.get("/healthz", (_req, res) => {
    res.json({ status: "ok", nodeId: d.nodeId });
  });
  r.get("/readyz", async (_req, res) => {
    const reason = await d.readiness.notReadyReason();
    if (reason) return sendError(res, ErrorCode.REVOCATION_UNAVAILABLE, reason);
    res.json({ status: "ready", nodeId: d.nodeId });
  });
  r.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", d.metrics.registry.contentType);
    res.send(await d.metrics.registry.metrics());
  });
  return r;
}
