/** Counts and times every HTTP request for /metrics, labelled by route pattern (never the raw path). */
import type { Request, RequestHandler, Response } from "express";
import type { Logger } from "pino";
import type { Metrics } from "../../metrics";

/**
 * The full pattern of the route that matched ("/auth/login", "/sessions/:sessionId"), whatever the
 * status. Taken when express sets req.route: only then is req.baseUrl the router's prefix (a
 * router restores it on the way out, so an error handler answering later saw "/login").
 */
export function trackRoutePattern(req: Request, res: Response): void {
  if (res.locals.routeTracked) return;
  res.locals.routeTracked = true;
  let route: unknown = req.route;
  Object.defineProperty(req, "route", {
    configurable: true,
    enumerable: true,
    get: () => route,
    set: (value: unknown) => {
      route = value;
      const path = (value as { path?: unknown } | undefined)?.path;
      if (typeof path === "string") res.locals.routePattern = `${req.baseUrl}${path}`;
    },
  });
}

/** The route label of a request: its pattern, else a label a middleware gave it, else "unmatched". */
export function routeLabel(res: Response): string {
  return (res.locals.routePattern as string | undefined) ?? (res.locals.metricsRoute as string | undefined) ?? "unmatched";
}

/** Labels every request that reaches it and matches no route (static files, a router's guard). */
export function labelRoute(label: string): RequestHandler {
  return (_req, res, next) => {
    res.locals.metricsRoute = label;
    next();
  };
}

export function httpMetrics(metrics: Metrics, log: Logger): RequestHandler {
  return (req, res, next) => {
    trackRoutePattern(req, res);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const route = routeLabel(res);
      metrics.httpRequests.inc({ method: req.method, route, status: res.statusCode });
      metrics.httpDuration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      // Path only: a query string could carry a token someone tried to send there.
      log.debug({ method: req.method, path: req.path, status: res.statusCode }, "http");
    });
    next();
  };
}
