/**
 * A JSON answer written straight to the response: what express's res.json + res.send do for an
 * API answer here (ETags are off, so no freshness or 304 logic applies), without their content
 * type negotiation and header parsing, which profiles of /healthz and /me showed on every request.
 * Node itself leaves the body out of an answer to HEAD.
 */
import type { ServerResponse } from "node:http";

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.end(text);
}
