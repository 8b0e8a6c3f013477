/** Tokens in URLs end up in logs and Referer headers: refuse them before anything else. */
import type { RequestHandler } from "express";
import { ErrorCode, GatehouseError } from "../../../shared/errors";

export const refuseQueryTokens: RequestHandler = (req, _res, next) => {
  if (!req.url.includes("?")) return next(); // no query string: skip parsing one
  const q = req.query as Record<string, unknown>;
  if (q && ("access_token" in q || "token" in q)) return next(new GatehouseError(ErrorCode.TOKEN_INVALID, "Tokens in the query string are refused; use the Authorization header."));
  next();
};
