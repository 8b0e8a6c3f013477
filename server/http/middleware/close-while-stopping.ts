/** While the node stops: every answer says Connection: close. */
import type { RequestHandler } from "express";

/**
 * server.close() only drops connections idle at that instant; one a load balancer keeps busy
 * (health checks on /readyz) would hold the exit past the deadline.
 */
export function closeConnectionsWhile(stopping: () => boolean): RequestHandler {
  return (_req, res, next) => {
    if (stopping()) res.setHeader("Connection", "close");
    next();
  };
}
