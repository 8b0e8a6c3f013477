/**
 * In-process reference: what Gatehouse's token check (server/auth/check.ts)
 * costs alone, per call, with the real TokenService and near-cache: no HTTP,
 * no socket.io, no other process. Also jsonwebtoken's verify alone (the part
 * of the check a naive server has too). Puts the rate ratios in proportion.
 */
import { createSecretKey, randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import jwt from "jsonwebtoken";
import { createTokenCheck } from "../../server/auth/check";
import { TokenService } from "../../server/auth/tokens";
import { systemClock } from "../../server/clock";
import { RevocationCache } from "../../server/revocation/cache";

function perCallUs(fn: () => unknown, ms: number): number {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    for (let i = 0; i < 200; i++) fn();
    n += 200;
  }
  return ((performance.now() - start) * 1000) / n;
}

export function checkMicro(ms: number): { checkUs: number; jwtVerifyUs: number; ok: boolean } {
  const secret = randomBytes(32);
  const tokens = new TokenService(secret, { issuer: "gatehouse", audience: "gatehouse-game", accessTtlMs: 15 * 60_000 }, systemClock);
  const check = createTokenCheck({ tokens, cache: new RevocationCache(), clock: systemClock, revocationAvailable: () => true });
  const { token } = tokens.issue({ userId: "bench-user-0000000001", sessionId: "bench-session-00000001", role: "player", version: 0, notBeforeIat: 0 });
  const key = createSecretKey(secret);
  const ok = check(token).ok;
  const checkUs = perCallUs(() => check(token), ms);
  const jwtVerifyUs = perCallUs(() => jwt.verify(token, key, { algorithms: ["HS256"], issuer: "gatehouse", audience: "gatehouse-game", clockTolerance: 5 }), ms);
  return { checkUs: Math.round(checkUs * 100) / 100, jwtVerifyUs: Math.round(jwtVerifyUs * 100) / 100, ok };
}
