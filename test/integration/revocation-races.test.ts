/**
 * Races between a revocation and the steps that issue tokens (contract section 5):
 * a login, a refresh or a password change that overlaps a revocation must not
 * come out of it with a live token. Each interleaving is forced at the Accounts
 * level (the store is the real one; a wrapper only runs the revocation at the
 * exact point between two steps), then tried black-box over HTTP.
 *
 * The interleavings:
 *  1. login:   verify password (reads version v) | password change / logout-all / admin reset (v+1) | create session
 *              -> the session step sees v+1 != v and creates nothing.
 *  2. refresh: rotate (reads version, cutoffs, ban) | kick / logout-all / password change | sign
 *              -> signed with what the rotation read, so the revocation covers the token.
 *  3. clocks:  a node whose clock runs seconds ahead issues tokens, another revokes all
 *              -> iat and the cutoff both come from Redis TIME.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { ErrorCode } from "../../shared/errors";
import { Accounts } from "../../server/auth/accounts";
import { hashPassword } from "../../server/auth/passwords";
import type { RevocationChange, RotateResult, Store } from "../../server/store/store";
import { REFRESH_TRAIL } from "../../server/store/store";
import type { MemoryStore } from "../../server/store/memory";
import { adminLogin, call, login, register, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { codeOf } from "../helpers/errors";
import { startRedis, type RedisProcess } from "../helpers/redis-server";

const PASSWORD = "password-123";

/** Accounts over the node's own store and revocations; `store` may wrap the node's to force an interleaving. */
function accountsOf(node: TestNode, store: Store = node.app.store): Accounts {
  const { app } = node;
  return new Accounts({
    store,
    tokens: app.tokens,
    revocations: app.revocations,
    clock: { now: () => Date.now() },
    refreshTtlMs: app.config.refreshTokenTtlMs,
    refreshReuseGraceMs: app.config.refreshReuseGraceMs,
  });
}

/** The node's store, with `between` run after rotateRefresh answered and before the caller goes on. */
function rotatingThen(store: Store, between: () => Promise<unknown>): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === "rotateRefresh") {
        return async (...args: Parameters<Store["rotateRefresh"]>): Promise<RotateResult> => {
          const result = await target.rotateRefresh(...args);
          await between();
          return result;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe.each(["memory", "redis"] as const)("revocation races (%s store)", (kind) => {
  let redis: RedisProcess | undefined;
  let node: TestNode;
  let admin: TokenPair;

  beforeAll(async () => {
    if (kind === "redis") redis = await startRedis();
    node = await startNode(redis ? { REDIS_URL: redis.url } : {});
    admin = await adminLogin(node.url);
  });
  afterAll(async () => {
    await node?.close();
    await redis?.stop();
  });

  const accessOk = async (token: string) => (await call(node.url, "GET", "/me", { token })).status === 200;
  const refreshStatus = async (refreshToken: string) => (await call(node.url, "POST", "/auth/refresh", { body: { refreshToken } })).status;

  describe("a login that verified the password before a user-wide revocation gets no session", () => {
    const revocations: [string, (userId: string, pair: TokenPair) => Promise<unknown>][] = [
      ["password change", (_id, pair) => call(node.url, "POST", "/auth/password", { token: pair.accessToken, body: { oldPassword: PASSWORD, newPassword: "password-456" } })],
      ["logout-all", (_id, pair) => call(node.url, "POST", "/auth/logout-all", { token: pair.accessToken })],
      ["admin kick", (id) => call(node.url, "POST", `/admin/users/${id}/kick`, { token: admin.accessToken, body: {} })],
    ];
    it.each(revocations)("%s", async (name, revoke) => {
      const first = await register(node.url, uniqueName(), PASSWORD);
      const accounts = accountsOf(node);
      const verified = await accounts.verifyCredentials(first.user.username, PASSWORD);
      expect(verified).not.toBeNull();
      const answered = await revoke(first.user.id, first);
      expect([200, 202, 204]).toContain((answered as { status: number }).status);
      const code = await codeOf(accounts.login(verified!, "racing device"));
      expect(code, name).toBe(name === "password change" ? ErrorCode.CREDENTIALS_INVALID : ErrorCode.SESSION_REVOKED);
      // nothing was created: the user has no session from that login
      const sessions = await node.app.store.listSessions(first.user.id, Date.now());
      expect(sessions.map((s) => s.device)).not.toContain("racing device");
    });
  });

  it("a login racing an admin reset of the admin password gets no session", async () => {
    const username = uniqueName("boss");
    const accounts = accountsOf(node);
    expect(await accounts.ensureAdmin(username, "old-admin-password", await hashPassword("old-admin-password"))).toBe("created");
    const verified = await accounts.verifyCredentials(username, "old-admin-password");
    expect(verified?.role).toBe("admin");
    expect(await accounts.ensureAdmin(username, "new-admin-password", await hashPassword("new-admin-password"))).toBe("reset");
    expect(await codeOf(accounts.login(verified!, "racing device"))).toBe(ErrorCode.CREDENTIALS_INVALID);
    expect(await node.app.store.listSessions(verified!.id, Date.now())).toEqual([]);
  });

  it("an admin reset through ADMIN_PASSWORD also lifts a ban on the admin account", async () => {
    const username = uniqueName("chief");
    const accounts = accountsOf(node);
    await accounts.ensureAdmin(username, "chief-password-1", await hashPassword("chief-password-1"));
    const chief = (await node.app.store.getUserByUsername(username))!;
    await node.app.revocations.revoke({ kind: "user", userId: chief.id, ban: { until: null, reason: "oops" }, reason: "banned" });
    expect((await call(node.url, "POST", "/auth/login", { body: { username, password: "chief-password-1" } })).body.error.code).toBe("USER_BANNED");
    // same password: only the ban is lifted
    expect(await accounts.ensureAdmin(username, "chief-password-1", await hashPassword("chief-password-1"))).toBe("reset");
    expect((await call(node.url, "POST", "/auth/login", { body: { username, password: "chief-password-1" } })).status).toBe(200);
  });

  describe("a refresh whose rotation read the user before a revocation signs a token that revocation covers", () => {
    const revocations: [string, (userId: string) => RevocationChange][] = [
      ["kick", (userId) => ({ kind: "user", userId, reason: "kicked" })],
      ["logout-all", (userId) => ({ kind: "user", userId, reason: "logout_all" })],
      ["ban", (userId) => ({ kind: "user", userId, ban: { until: null }, reason: "banned" })],
      ["revoke-all", () => ({ kind: "global", reason: "revoked_all" })],
    ];
    it.each(revocations)("%s", async (name, change) => {
      const pair = await register(node.url, uniqueName(), PASSWORD);
      const accounts = accountsOf(
        node,
        rotatingThen(node.app.store, () => node.app.revocations.revoke(change(pair.user.id))),
      );
      const raced = await accounts.refresh(pair.refreshToken);
      expect(await accessOk(raced.accessToken), `${name}: access token minted across the revocation`).toBe(false);
      expect(await refreshStatus(raced.refreshToken), `${name}: refresh chain survived`).not.toBe(200);
      if (name === "revoke-all") admin = await adminLogin(node.url); // the admin's own token died too
    });
  });

  it("black box: logins racing a password change never keep a working token (6 rounds)", { timeout: 90_000 }, async () => {
    for (let round = 0; round < 6; round++) {
      const first = await register(node.url, uniqueName(), PASSWORD);
      const logins = Array.from({ length: 3 }, () => call<TokenPair>(node.url, "POST", "/auth/login", { body: { username: first.user.username, password: PASSWORD } }));
      const change = await call<TokenPair>(node.url, "POST", "/auth/password", {
        token: first.accessToken,
        body: { oldPassword: PASSWORD, newPassword: "password-789" },
      });
      expect(change.status).toBe(200);
      for (const r of await Promise.all(logins)) {
        if (r.status !== 200) continue;
        // A login that answered 200 finished before or after the change: either way only the
        // change's own new session may live on.
        expect(await accessOk(r.body.accessToken)).toBe(false);
        expect(await refreshStatus(r.body.refreshToken)).not.toBe(200);
      }
      expect(await accessOk(change.body.accessToken)).toBe(true);
    }
  });

  it("black box: refreshes racing a logout-all never keep a working token (10 rounds)", async () => {
    for (let round = 0; round < 10; round++) {
      const a = await register(node.url, uniqueName(), PASSWORD);
      const b = await login(node.url, a.user.username, PASSWORD, "tablet");
      const refresh = call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: b.refreshToken } });
      expect((await call(node.url, "POST", "/auth/logout-all", { token: a.accessToken })).status).toBe(204);
      const r = await refresh;
      if (r.status === 200) {
        expect(await accessOk(r.body.accessToken)).toBe(false);
        expect(await refreshStatus(r.body.refreshToken)).not.toBe(200);
      }
    }
  });

  it("a retried refresh within REFRESH_REUSE_GRACE answers the same live pair; older tokens are reuse", async () => {
    const pair = await register(node.url, uniqueName(), PASSWORD);
    const first = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    const retry = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.body.refreshToken).toBe(first.body.refreshToken);
    expect(retry.body.sessionId).toBe(pair.sessionId);
    expect(await accessOk(retry.body.accessToken)).toBe(true);
    // the chain goes on from the shared successor
    const next = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: retry.body.refreshToken } });
    expect(next.status).toBe(200);
    // the first token is now two rotations back: reuse, the session dies
    const reuse = await call(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    expect(reuse.body.error.code).toBe(ErrorCode.REFRESH_REUSED);
    expect(await accessOk(next.body.accessToken)).toBe(false);
  });

  it("tokens that merely name a session never spend its refresh budget", async () => {
    const limited = await startNode({ ...(redis ? { REDIS_URL: redis.url } : {}), RATE_LIMIT_REFRESH_SESSION: "3/1m" });
    try {
      const pair = await register(limited.url, uniqueName(), PASSWORD);
      for (let i = 0; i < 10; i++) {
        const forged = `${pair.sessionId}.${randomBytes(32).toString("base64url")}`;
        const r = await call(limited.url, "POST", "/auth/refresh", { body: { refreshToken: forged } });
        expect(r.body.error.code).toBe(ErrorCode.REFRESH_INVALID);
      }
      let token = pair.refreshToken;
      for (let i = 0; i < 3; i++) {
        const r = await call<TokenPair>(limited.url, "POST", "/auth/refresh", { body: { refreshToken: token } });
        expect(r.status).toBe(200);
        token = r.body.refreshToken;
      }
      // the owner's own refreshes do spend it
      expect((await call(limited.url, "POST", "/auth/refresh", { body: { refreshToken: token } })).status).toBe(429);
    } finally {
      await limited.close();
    }
  });

  it("200 rotations of one session keep a bounded trail, not 200 records", async () => {
    const pair = await register(node.url, uniqueName(), PASSWORD);
    const accounts = accountsOf(node);
    // memory: refresh hashes held; Redis: session and refresh keys (presence and limits write others meanwhile)
    const count = async () => {
      if (kind === "memory") return (node.app.store as MemoryStore).stats().refresh;
      const c = new Redis(redis!.url);
      try {
        return (await c.keys("gh:s:*")).length + (await c.keys("gh:r*")).length;
      } finally {
        c.disconnect();
      }
    };
    let token = pair.refreshToken;
    for (let i = 0; i < 5; i++) token = (await accounts.refresh(token)).refreshToken;
    const before = await count();
    for (let i = 0; i < 200; i++) token = (await accounts.refresh(token)).refreshToken;
    const after = await count();
    // at most the live hash and REFRESH_TRAIL rotated ones per session; no new Redis key at all
    expect(after - before).toBeLessThanOrEqual(kind === "memory" ? REFRESH_TRAIL : 0);
  });

  it("a logout's jti mark lives until the token's exp plus the clock tolerance", async () => {
    const pair = await register(node.url, uniqueName(), PASSWORD);
    const claims = JSON.parse(Buffer.from(pair.accessToken.split(".")[1]!, "base64url").toString()) as { jti: string; exp: number };
    expect((await call(node.url, "POST", "/auth/logout", { token: pair.accessToken })).status).toBe(204);
    const marks = await node.app.store.loadMarks(Date.now());
    expect(marks.jtis.find((m) => m.jti === claims.jti)?.expiresAt).toBe((claims.exp + 5) * 1000);
  });

  it("no refresh token is stored in clear, nor its successor", async () => {
    if (kind !== "redis") return; // the memory store has no outside view to read
    const pair = await register(node.url, uniqueName(), PASSWORD);
    const next = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    const c = new Redis(redis!.url);
    try {
      const dump: string[] = [];
      for (const key of await c.keys("*")) {
        const type = await c.type(key);
        if (type === "hash") dump.push(JSON.stringify(await c.hgetall(key)));
        else if (type === "string") dump.push((await c.get(key)) ?? "");
      }
      const all = dump.join("\n");
      // the secret is the last part (the first two are the session id, stored as such)
      for (const t of [pair.refreshToken, next.body.refreshToken]) expect(all).not.toContain(t.slice(t.lastIndexOf(".") + 1));
    } finally {
      c.disconnect();
    }
  });
});

describe("nodes with skewed clocks (one Redis)", () => {
  let redis: RedisProcess;
  const nodes: TestNode[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await redis?.stop();
  });

  it("a token issued by a node running 5 s fast does not survive a revoke-all from a node running 5 s slow", async () => {
    const fast = await startNode({ REDIS_URL: redis.url }, { clock: { now: () => Date.now() + 5_000 } });
    const slow = await startNode({ REDIS_URL: redis.url }, { clock: { now: () => Date.now() - 5_000 } });
    nodes.push(fast, slow);
    const pair = await register(fast.url, uniqueName(), PASSWORD);
    const admin = await adminLogin(slow.url);
    expect((await call(slow.url, "POST", "/admin/revoke-all", { token: admin.accessToken })).status).toBe(202);
    for (const n of [fast, slow]) {
      const r = await call(n.url, "GET", "/me", { token: pair.accessToken });
      expect(r.status, n === fast ? "fast node" : "slow node").toBe(401);
    }
    // and a token issued right after it works on both
    const again = await login(fast.url, pair.user.username, PASSWORD);
    for (const n of [fast, slow]) expect((await call(n.url, "GET", "/me", { token: again.accessToken })).status).toBe(200);
  });
});
