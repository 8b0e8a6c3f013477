/** Counts and times every HTTP request for /metrics, labelled by route pattern (never the raw path). */
import type { Request, RequestHandler, Response } from "express";
import type { Logger } from "pino";
import type { Metrics } from "../../metrics";

const ROUTE = Symbol("gatehouse.route");
const hookedPrototypes = new WeakSet<object>();

/**
 * The full pattern of the route that matched ("/auth/login", "/sessions/:sessionId"), whatever the
 * status. Taken when express sets req.route: only then is req.baseUrl the router's prefix (a
 * router restores it on the way out, so an error handler answering later saw "/login"). The
 * accessor goes on the app's request prototype once, not on each request: defining a property
 * per request object turned every request into a slow dictionary-mode object (seen in profiles).
 */
export function trackRoutePattern(req: Request, _res?: Response): void {
  const proto = Object.getPrototypeOf(req) as object;
  if (hookedPrototypes.has(proto)) return;
  hookedPrototypes.add(proto);
  Object.defineProperty(proto, "route", {
    configurable: true,
    enumerable: true,
    get(this: Request & { [ROUTE]?: unknown }) {
      return this[ROUTE];
    },
    set(this: Request & { [ROUTE]?: unknown }, value: unknown) {
      this[ROUTE] = value;
      const path = (value as { path?: unknown } | undefined)?.path;
      if (typeof path === "string" && this.res) this.res.locals.routePattern = `${this.baseUrl}${path}`;
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

/**
 * The label objects of each series, made once: prom-client hashes the labels it is given, and a
 * fresh object per request (two per request here) showed in profiles of /healthz.
 */
class SeriesLabels {
  private readonly byRoute = new Map<string, Map<string, { timing: { method: string; route: string }; byStatus: Map<number, { method: string; route: string; status: number }> }>>();

  of(method: string, route: string) {
    let byMethod = this.byRoute.get(route);
    if (!byMethod) this.byRoute.set(route, (byMethod = new Map()));
    let series = byMethod.get(method);
    if (!series) byMethod.set(method, (series = { timing: { method, route }, byStatus: new Map() }));
    return series;
  }

  withStatus(series: ReturnType<SeriesLabels["of"]>, status: number) {
    let labels = series.byStatus.get(status);
    if (!labels) series.byStatus.set(status, (labels = { ...series.timing, status }));
    return labels;
  }
}

export function httpMetrics(metrics: Metrics, log: Logger): RequestHandler {
  const labels = new SeriesLabels();
  return (req, res, next) => {
    trackRoutePattern(req);
    const started = performance.now();
    res.on("finish", () => {
      const series = labels.of(req.method, routeLabel(res));
      metrics.httpRequests.inc(labels.withStatus(series, res.statusCode));
      metrics.httpDuration.observe(series.timing, (performance.now() - started) / 1000);
      // Path only: a query string could carry a token someone tried to send there. Guarded: the
      // log object (and req.path's URL parse) would be built for every request otherwise.
      if (log.isLevelEnabled("debug")) log.debug({ method: req.method, path: req.path, status: res.statusCode }, "http");
    });
    next();
  };
}
