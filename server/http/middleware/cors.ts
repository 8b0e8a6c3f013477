/** CORS for the API: the configured origins, or "*" for any (tokens travel in headers, never cookies). */
import type { RequestHandler } from "express";

export function cors(origins: readonly string[]): RequestHandler {
  const any = origins.includes("*");
  if (any && origins.length > 1) throw new Error('cors: "*" must be the only origin');
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin && (any || origins.includes(origin))) {
      res.setHeader("Access-Control-Allow-Origin", any ? "*" : origin);
      if (!any) res.setHeader("Vary", "Origin");
      res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    }
    if (req.method === "OPTIONS") return void res.status(204).end();
    next();
  };
}

/** The same origins as socket.io's `cors` option (undefined: same origin only). */
export function socketCors(origins: readonly string[]): { origin: string | string[]; credentials: false } | undefined {
  if (origins.length === 0) return undefined;
  return { origin: origins.includes("*") ? "*" : [...origins], credentials: false };
}
