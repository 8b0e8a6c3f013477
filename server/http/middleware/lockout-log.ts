/**
 * One info line when a password check is refused by a rate limit (the failed-login budgets, the
 * per-address limit): the account and address concerned, never the password. Mount it on the
 * login and password-change paths, after the JSON body parser.
 */
import type { RequestHandler } from "express";
import type { Logger } from "pino";

export function lockoutLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    res.on("finish", () => {
      if (res.statusCode !== 429) return;
      const named = (req.body as { username?: unknown } | undefined)?.username;
      log.info(
        {
          ...(typeof named === "string" ? { username: named.slice(0, 64) } : { userId: req.claims?.sub }),
          ip: req.ip,
          path: req.originalUrl.split("?")[0],
          retryAfterSec: Number(res.getHeader("Retry-After")) || undefined,
        },
        "login locked out",
      );
    });
    next();
  };
}
