/** The one check, with a frozen clock: ordering, the iat one-second holes, expiry tolerance, staleness. */
import { describe, expect, it } from "vitest";
import { createTokenCheck, withReadThrough } from "../../server/auth/check";
import { TokenService } from "../../server/auth/tokens";
import { RevocationCache } from "../../server/revocation/cache";
import type { RevocationEvent } from "../../server/store/store";

function setup(startMs = 1_700_000_000_500) {
  const clock = { t: startMs, now() { return this.t; } };
  const tokens = new TokenService(Buffer.alloc(32, 7), { issuer: "gatehouse", audience: "gatehouse-game", accessTtlMs: 60_000 }, clock);
  const cache = new RevocationCache();
  let available = true;
  const check = createTokenCheck({ tokens, cache, clock, revocationAvailable: () => available });
  const issue = (over: Partial<{ version: number; notBeforeIat: number; sessionId: string }> = {}) =>
    tokens.issue({ userId: "u1", sessionId: over.sessionId ?? "s1", role: "player", version: over.version ?? 0, notBeforeIat: over.notBeforeIat ?? 0 });
  const event = (e: Partial<RevocationEvent>): RevocationEvent => ({ seq: 1, kind: "user", reason: "kicked", at: clock.t, expiresAt: clock.t + 66_000, nodeId: "n", ...e });
  return { clock, tokens, cache, check, issue, event, setAvailable: (v: boolean) => (available = v) };
}

describe("the token check", () => {
  it("accepts a fresh token and returns its claims", () => {
    const { check, issue } = setup();
    const { token } = issue();
    const r = check(token);
    expect(r.ok && r.claims).toMatchObject({ sub: "u1", sid: "s1", ver: 0, role: "player", iss: "gatehouse", aud: "gatehouse-game" });
  });

  it("closes both one-second holes of a user-wide revocation", () => {
    const { clock, cache, check, issue, event } = setup(1_700_000_000_300);
    const before = issue().token; // iat = 1_700_000_000
    // Revocation in the same second: token_valid_after = next whole second, version 1.
    cache.apply(event({ kind: "user", userId: "u1", version: 1, tokenValidAfter: 1_700_000_001 }));
    expect(check(before)).toEqual({ ok: false, code: "TOKEN_REVOKED" });
    clock.t += 200; // still the same second
    const after = issue({ version: 1, notBeforeIat: 1_700_000_001 }).token;
    expect(check(after).ok).toBe(true);
  });

  it("global token_valid_after kills older tokens only", () => {
    const { cache, check, issue, event } = setup();
    const before = issue().token;
    cache.apply(event({ kind: "global", tokenValidAfter: 1_700_000_001, reason: "revoked_all" }));
    expect(check(before)).toEqual({ ok: false, code: "TOKEN_REVOKED" });
    expect(check(issue({ notBeforeIat: cache.globalValidAfter(1_700_000_000_500) }).token).ok).toBe(true);
  });

  it("refuses by jti, session and ban with their own codes", () => {
    const { cache, check, issue, event } = setup();
    const a = issue();
    cache.apply(event({ kind: "session", sessionId: "other", jti: a.claims.jti, reason: "logout" }));
    expect(check(a.token)).toEqual({ ok: false, code: "TOKEN_REVOKED" });
    const b = issue({ sessionId: "s2" });
    cache.apply(event({ kind: "session", sessionId: "s2", reason: "session_revoked" }));
    expect(check(b.token)).toEqual({ ok: false, code: "SESSION_REVOKED" });
    const c = issue({ sessionId: "s3" });
    // A ban mark alone (e.g. loaded from a snapshot) refuses with USER_BANNED.
    cache.load({ jtis: [], sessions: [], users: [], bans: [{ userId: "u1", until: null, expiresAt: Date.now() * 2 }], global: null });
    expect(check(c.token)).toEqual({ ok: false, code: "USER_BANNED" });
  });

  it("honours exp with at most 5 s of tolerance", () => {
    const { clock, check, issue } = setup();
    const { token } = issue();
    clock.t += 60_000 + 4_000;
    expect(check(token).ok).toBe(true);
    clock.t += 2_000;
    expect(check(token)).toEqual({ ok: false, code: "TOKEN_EXPIRED" });
  });

  it("marks expire with the tokens they cover", () => {
    const { clock, cache, check, issue, event } = setup();
    const t = issue({ sessionId: "s9" });
    cache.apply(event({ kind: "session", sessionId: "s9", reason: "logout", expiresAt: clock.t + 1000 }));
    expect(cache.size()).toBe(1);
    expect(check(t.token).ok).toBe(false);
    clock.t += 1001;
    cache.purge(clock.t);
    expect(cache.size()).toBe(0);
  });

  it("refuses with REVOCATION_UNAVAILABLE once revocation state is stale, but only after the signature passed", () => {
    const { check, issue, setAvailable } = setup();
    setAvailable(false);
    expect(check(issue().token)).toEqual({ ok: false, code: "REVOCATION_UNAVAILABLE" });
    expect(check("garbage")).toEqual({ ok: false, code: "TOKEN_INVALID" });
  });

  it("out of sync, a token that passes on the cache is checked again against its marks read from the store", async () => {
    const { clock, cache, check, issue } = setup();
    let inSync = true;
    const reads: string[] = [];
    // The store knows a logout of s1 that this node's feed missed.
    const storeMarks = { jtis: [], sessions: [{ sessionId: "s1", expiresAt: clock.t + 60_000, reason: "logout" }], users: [], bans: [], global: null };
    const live = withReadThrough(check, {
      inSync: () => inSync,
      readMarksFor: async (c) => {
        reads.push(c.sid);
        cache.load(storeMarks, "merge");
      },
    });
    const { token } = issue();
    const inSyncAnswer = live(token);
    expect(inSyncAnswer).not.toBeInstanceOf(Promise); // in sync: the cache alone decides, at once
    expect((await inSyncAnswer).ok).toBe(true);
    expect(reads).toEqual([]);
    inSync = false;
    expect(await live("garbage")).toEqual({ ok: false, code: "TOKEN_INVALID" }); // refused before any read
    expect(reads).toEqual([]);
    expect(await live(token)).toEqual({ ok: false, code: "SESSION_REVOKED" });
    expect(reads).toEqual(["s1"]);
  });
});

describe("the verified-token cache", () => {
  it("answers a token seen before from memory, and still runs the revocation check on every use", () => {
    const { tokens, cache, check, issue, event } = setup();
    const { token } = issue();
    expect(check(token).ok).toBe(true);
    expect(tokens.verifiedCacheEntries).toBe(1);
    expect(check(token).ok).toBe(true);
    expect(tokens.verifiedCacheEntries).toBe(1);
    cache.apply(event({ kind: "user", userId: "u1", version: 1, tokenValidAfter: 1_700_000_001 }));
    expect(check(token)).toEqual({ ok: false, code: "TOKEN_REVOKED" });
  });

  it("keeps the staleness rule for a remembered token", () => {
    const { check, issue, setAvailable } = setup();
    const { token } = issue();
    expect(check(token).ok).toBe(true);
    setAvailable(false);
    expect(check(token)).toEqual({ ok: false, code: "REVOCATION_UNAVAILABLE" });
  });

  it("forgets a token at its exp (+ the tolerance): it is then verified again and refused as expired", () => {
    const { clock, tokens, check, issue } = setup();
    const { token } = issue();
    expect(check(token).ok).toBe(true);
    clock.t += 60_000 + 5_000;
    expect(check(token)).toEqual({ ok: false, code: "TOKEN_EXPIRED" });
    expect(tokens.verifiedCacheEntries).toBe(0);
  });

  it("matches the whole signed string only: a changed signature is verified (and refused)", () => {
    const { check, issue } = setup();
    const { token } = issue();
    expect(check(token).ok).toBe(true);
    const last = token.at(-2) === "A" ? "B" : "A";
    expect(check(token.slice(0, -2) + last + token.at(-1))).toEqual({ ok: false, code: "TOKEN_INVALID" });
  });

  it("is bounded, dropping the oldest token first (a hit is answered with the remembered result)", () => {
    const clock = { t: 1_700_000_000_500, now() { return this.t; } };
    const tokens = new TokenService(Buffer.alloc(32, 7), { issuer: "gatehouse", audience: "gatehouse-game", accessTtlMs: 60_000, verifiedCacheSize: 2 }, clock);
    const issue = (sid: string) => tokens.issue({ userId: "u1", sessionId: sid, role: "player", version: 0, notBeforeIat: 0 }).token;
    const [a, b, c] = [issue("a"), issue("b"), issue("c")];
    const ra = tokens.verifySignedClaims(a);
    const rb = tokens.verifySignedClaims(b);
    expect(tokens.verifySignedClaims(a)).toBe(ra); // remembered
    tokens.verifySignedClaims(c); // evicts a, the oldest (a hit does not reorder)
    expect(tokens.verifiedCacheEntries).toBe(2);
    expect(tokens.verifySignedClaims(b)).toBe(rb);
    const again = tokens.verifySignedClaims(a); // verified again, evicts b
    expect(again).not.toBe(ra);
    expect(again).toEqual(ra);
    expect(tokens.verifiedCacheEntries).toBe(2);
  });

  it("hands out frozen claims, so no caller can change what later uses of the token see", () => {
    const { check, issue } = setup();
    const r = check(issue().token);
    expect(r.ok && Object.isFrozen(r.claims)).toBe(true);
  });
});

describe("key rotation (JWT_SECRET_PREVIOUS)", () => {
  const OLD = Buffer.alloc(32, 1);
  const NEW = Buffer.alloc(32, 2);
  const opts = { issuer: "gatehouse", audience: "gatehouse-game", accessTtlMs: 60_000 };
  const clock = { t: 1_700_000_000_500, now() { return this.t; } };
  const signWith = (secret: Buffer) => new TokenService(secret, opts, clock).issue({ userId: "u1", sessionId: "s1", role: "player", version: 0, notBeforeIat: 0 }).token;

  it("accepts a token signed with an earlier key only while that key is listed", () => {
    const old = signWith(OLD);
    expect(new TokenService(NEW, { ...opts, previousSecrets: [Buffer.alloc(32, 9), OLD] }, clock).verifySignedClaims(old)).toMatchObject({ ok: true, claims: { sub: "u1" } });
    expect(new TokenService(NEW, opts, clock).verifySignedClaims(old)).toEqual({ ok: false, code: "TOKEN_INVALID" });
    // The current key still verifies its own tokens with earlier keys listed.
    expect(new TokenService(NEW, { ...opts, previousSecrets: [OLD] }, clock).verifySignedClaims(signWith(NEW)).ok).toBe(true);
  });

  it("an expired token signed with an earlier key says TOKEN_EXPIRED; a signature no key makes is TOKEN_INVALID", () => {
    const old = signWith(OLD);
    const later = { ...clock, t: clock.t + 60_000 + 6_000 };
    expect(new TokenService(NEW, { ...opts, previousSecrets: [OLD] }, later).verifySignedClaims(old)).toEqual({ ok: false, code: "TOKEN_EXPIRED" });
    const forged = signWith(Buffer.alloc(32, 3));
    expect(new TokenService(NEW, { ...opts, previousSecrets: [OLD] }, clock).verifySignedClaims(forged)).toEqual({ ok: false, code: "TOKEN_INVALID" });
    expect(new TokenService(NEW, { ...opts, previousSecrets: [OLD] }, later).verifySignedClaims(forged)).toEqual({ ok: false, code: "TOKEN_INVALID" });
  });
});
