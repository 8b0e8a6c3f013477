/** One error shape for every HTTP failure: {"error": {"code", "message"}} with an honest status. */
import type { Server } from "node:http";
import type { Duplex } from "node:stream";
import type { ErrorRequestHandler, Response } from "express";
import type { Logger } from "pino";
import { ErrorCode, GatehouseError, errorMessage, errorStatus, type ErrorDetails } from "../../shared/errors";
import { RateLimitedError } from "./rate-limits";

export function sendError(res: Response, code: ErrorCode, message: string = errorMessage[code], details?: ErrorDetails): void {
  if (errorStatus[code] === 401) {
    // RFC 7235: every 401 names its scheme. RFC 6750: when a presented access token is the
    // problem (bad, expired, revoked, or its session revoked), say so.
    const tokenRefused = code === ErrorCode.SESSION_REVOKED || (code.startsWith("TOKEN_") && code !== ErrorCode.TOKEN_MISSING);
    res.setHeader("WWW-Authenticate", tokenRefused ? 'Bearer realm="gatehouse", error="invalid_token"' : 'Bearer realm="gatehouse"');
  }
  res.status(errorStatus[code]).json({ error: { code, message, ...details } });
}

/** Last middleware: coded errors pass through; body-parser's become 400/413; the rest 500 (logged). */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) return;
    if (err instanceof RateLimitedError) res.setHeader("Retry-After", String(err.retryAfterSec));
    if (err instanceof GatehouseError) return sendError(res, err.code, err.message, err.details);
    const type = (err as { type?: string }).type;
    if (type === "entity.too.large") return sendError(res, ErrorCode.PAYLOAD_TOO_LARGE);
    if (type === "entity.parse.failed" || type === "encoding.unsupported" || type === "charset.unsupported") {
      return sendError(res, ErrorCode.VALIDATION_FAILED, "The body is not valid JSON.");
    }
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) return sendError(res, ErrorCode.VALIDATION_FAILED);
    log.error({ err, path: req.path }, "unhandled error");
    sendError(res, ErrorCode.INTERNAL);
  };
}

/**
 * Requests Node's HTTP parser refuses before express sees them (headers over
 * maxHeaderSize: a huge token; garbage that is not HTTP) still get the one
 * error shape, not Node's bare status line.
 */
export function answerMalformedRequests(server: Server): void {
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === "ECONNRESET" || !socket.writable) return void socket.destroy();
    const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
    const status = tooLarge ? "431 Request Header Fields Too Large" : "400 Bad Request";
    const error = tooLarge
      ? { code: ErrorCode.PAYLOAD_TOO_LARGE, message: "Request headers are too large (a token is at most 4 KB)." }
      : { code: ErrorCode.VALIDATION_FAILED, message: "Malformed HTTP request." };
    const body = JSON.stringify({ error });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
}
