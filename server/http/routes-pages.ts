/** GET / (the game), GET /tictactoe (the second game), GET /admin (the dashboard) and /static/*: the browser pages. */
import { existsSync } from "node:fs";
import type { ServerResponse } from "node:http";
import path from "node:path";
import express, { Router, type RequestHandler } from "express";

/**
 * The pages keep their token pair in sessionStorage, so injected script must
 * have nowhere to run: no inline script or style, nothing from another origin,
 * no framing (clickjacking on the admin buttons).
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** On every file this router serves: the pages are also reachable as /static/*.html. */
function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader("Content-Security-Policy", PAGE_CSP);
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("X-Content-Type-Options", "nosniff");
}

export function pageRoutes(publicDir: string): Router {
  const r = Router();
  const page =
    (file: string): RequestHandler =>
    (_req, res) => {
      const full = path.join(publicDir, file);
      if (!existsSync(full)) return void res.status(404).type("text/plain").send("Pages are not built: run npm run build");
      setSecurityHeaders(res);
      res.setHeader("Cache-Control", "no-cache");
      res.sendFile(full);
    };
  r.get("/", page("game.html"));
  r.get("/admin", page("admin.html"));
  r.get("/tictactoe", page("tictactoe.html"));
  // File names carry no version: revalidate (a cheap 304) so a deploy never mixes old script with a new server.
  r.use(
    "/static",
    express.static(publicDir, {
      index: false,
      maxAge: 0,
      setHeaders: setSecurityHeaders,
    }),
  );
  return r;
}
