/** Tokens in URLs end up in logs and Referer headers: refuse them before anything else. */
import type { Request, RequestHandler } from "express";
import { ErrorCode, GatehouseError } from "../../../shared/errors";

/** The error for a request carrying a token in its query string, else null. */
export function queryTokenError(req: Request): GatehouseError | null {
  if (!req.url.includes("?")) return null; // no query string: skip parsing one
  const q = req.query as Record<string, unknown>;
  if (q && ("access_token" in q || "token" in q)) return new GatehouseError(ErrorCode.TOKEN_INVALID, "Tokens in the query string are refused; use the Authorization header.");
  return null;
}

export const refuseQueryTokens: RequestHandler = (req, _res, next) => {
  next(queryTokenError(req) ?? undefined);
};
