/** Bearer authentication for HTTP, through the same check as the socket.io handshake. */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { AccessClaims } from "../../shared/claims";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { CheckResult, LiveTokenCheck } from "../auth/check";
import type { Store, UserRecord } from "../store/store";
import { queryTokenError } from "./middleware/refuse-query-tokens";

declare module "express-serve-static-core" {
  interface Request {
    claims?: AccessClaims;
    admin?: UserRecord;
  }
}

export function claimsOf(req: Request): AccessClaims {
  if (!req.claims) throw new GatehouseError(ErrorCode.TOKEN_MISSING);
  return req.claims;
}

/**
 * Bearer authentication. Synchronous when the check answers from the cache (the hot path: no
 * promise per request); a token in the query string is refused here too, so a router mounted at
 * "/" needs no separate middleware for it (tokens in URLs end up in logs and Referer headers).
 */
export function requireAuth(check: LiveTokenCheck): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const inQuery = queryTokenError(req);
    if (inQuery) return next(inQuery);
    const header = req.headers.authorization;
    if (header === undefined) return next(new GatehouseError(ErrorCode.TOKEN_MISSING));
    const m = /^Bearer ([^\s]+)$/i.exec(header);
    if (!m) return next(new GatehouseError(ErrorCode.TOKEN_INVALID));
    const result = check(m[1]);
    if (result instanceof Promise) return void result.then((r) => admit(req, r, next), next);
    admit(req, result, next);
  };
}

function admit(req: Request, result: CheckResult, next: NextFunction): void {
  if (!result.ok) return next(new GatehouseError(result.code));
  req.claims = result.claims;
  next();
}

/** Admin rights come from the user record, not the `role` claim alone: a demotion takes effect at once. */
export function requireAdmin(check: LiveTokenCheck, store: Store): RequestHandler[] {
  const auth = requireAuth(check);
  const admin: RequestHandler = async (req, _res, next) => {
    const claims = claimsOf(req);
    if (claims.role !== "admin") throw new GatehouseError(ErrorCode.FORBIDDEN);
    const user = await store.getUser(claims.sub);
    if (!user || user.role !== "admin") throw new GatehouseError(ErrorCode.FORBIDDEN);
    req.admin = user;
    next();
  };
  return [auth, admin];
}
