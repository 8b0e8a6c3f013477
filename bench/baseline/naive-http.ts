/**
 * Bench baseline "naive": express 5 + jsonwebtoken verify (with a KeyObject,
 * the fast way) + one Redis GET of a blacklist key `bl:<jti>` per request, the
 * way many JWT-revocation tutorials do it. Answers GET /me with the same JSON
 * as Gatehouse ({id, username, role}). Run as a child process by bench/run.ts.
 *
 * env: PORT (0 = free port), REDIS_URL, JWT_SECRET (same bytes as the cluster),
 * JWT_ISSUER, JWT_AUDIENCE, BENCH_USERS (JSON {userId: username}: Gatehouse
 * caches usernames in memory, so the baseline gets them in memory too).
 */
import { createSecretKey } from "node:crypto";
import express from "express";
import jwt, { type JwtPayload } from "jsonwebtoken";
import { Redis } from "ioredis";

const port = Number(process.env.PORT ?? "0");
const key = createSecretKey(Buffer.from(process.env.JWT_SECRET ?? "", "utf8"));
const issuer = process.env.JWT_ISSUER ?? "gatehouse";
const audience = process.env.JWT_AUDIENCE ?? "gatehouse-game";
const users = new Map<string, string>(Object.entries(JSON.parse(process.env.BENCH_USERS ?? "{}") as Record<string, string>));
const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:1", { maxRetriesPerRequest: 1 });
redis.on("error", () => undefined);

const fail = (res: express.Response, status: number, code: string, message: string) => res.status(status).json({ error: { code, message } });

const app = express();
app.disable("x-powered-by");
app.get("/healthz", (_req, res) => {
  res.json({ status: "ok" });
});
app.get("/me", async (req, res) => {
  const m = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? "");
  if (!m) return fail(res, 401, "TOKEN_MISSING", "An access token is required.");
  let claims: JwtPayload;
  try {
    claims = jwt.verify(m[1]!, key, { algorithms: ["HS256"], issuer, audience, clockTolerance: 5 }) as JwtPayload;
  } catch {
    return fail(res, 401, "TOKEN_INVALID", "The access token is invalid.");
  }
  let blacklisted: string | null;
  try {
    blacklisted = await redis.get(`bl:${String(claims.jti)}`);
  } catch {
    return fail(res, 503, "REVOCATION_UNAVAILABLE", "Revocation state unavailable.");
  }
  if (blacklisted !== null) return fail(res, 401, "TOKEN_REVOKED", "The access token was revoked.");
  const id = String(claims.sub);
  res.json({ id, username: users.get(id) ?? null, role: claims.role });
});

await redis.ping();
const server = app.listen(port, "127.0.0.1", () => {
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;
  process.stdout.write(`naive baseline listening on http://127.0.0.1:${bound}\n`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  redis.quit().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
