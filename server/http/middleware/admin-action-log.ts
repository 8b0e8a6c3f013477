/**
 * One info line per admin action that changed something (kick, ban, unban, revocations), after it
 * succeeded: who, which action (the route pattern) and the path with its ids. Reads only what the
 * admin guard and the router left on the request; bodies (reasons) stay in the audit trail.
 */
import type { RequestHandler } from "express";
import type { Logger } from "pino";
import { routeLabel, trackRoutePattern } from "./http-metrics";

export function adminActionLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
    trackRoutePattern(req);
    res.on("finish", () => {
      if (res.statusCode >= 400 || !req.admin) return;
      log.info({ admin: req.admin.username, adminId: req.admin.id, action: `${req.method} ${routeLabel(res)}`, path: req.originalUrl.split("?")[0] }, "admin action");
    });
    next();
  };
}
