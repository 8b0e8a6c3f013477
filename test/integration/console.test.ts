/**
 * Running a game from the admin console, over real HTTP and real sockets, on both stores:
 * SESSIONS_PER_USER=1 (a login replaces the user's other sessions, on every node), USER_BANNED
 * with the ban's end and reason, and GET /admin/users (find anyone, online or offline).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { newRefreshToken, newSessionId } from "../../server/auth/tokens";
import { adminLogin, call, login, register, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { connect, type TestSocket } from "../helpers/sockets";

describe.each(["memory", "redis"] as const)("admin console and SESSIONS_PER_USER (%s store)", (kind) => {
  let redis: RedisProcess | undefined;
  /** two nodes on one Redis; on the memory store the same node twice */
  let a: TestNode;
  let b: TestNode;
  let admin: TokenPair;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    if (kind === "redis") redis = await startRedis();
    const env = { SESSIONS_PER_USER: "1", ...(redis ? { REDIS_URL: redis.url } : {}) };
    a = await startNode({ ...env, NODE_ID: "console-a" });
    b = redis ? await startNode({ ...env, NODE_ID: "console-b" }) : a;
    admin = await adminLogin(a.url);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    if (b !== a) await b?.close();
    await a?.close();
    await redis?.stop();
  });

  async function socket(url: string, pair: TokenPair): Promise<TestSocket> {
    const s = await connect(url, pair.accessToken);
    open.push(s);
    return s;
  }

  const me = (node: TestNode, pair: TokenPair) => call(node.url, "GET", "/me", { token: pair.accessToken });
  const refresh = (node: TestNode, pair: TokenPair) => call(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });

  describe("SESSIONS_PER_USER=1", () => {
    it("a login replaces the user's other sessions on every node; the new one lives", async () => {
      const username = uniqueName("solo");
      const laptop = await register(a.url, username, "password-123", "laptop");
      const phone = await login(b.url, username, "password-123", "phone");
      // the phone's login already replaced the laptop
      const laptopSocket = await socket(a.url, laptop).catch((err: Error) => err);
      expect(laptopSocket).toMatchObject({ message: "SESSION_REVOKED" });
      const phoneSocket = await socket(b.url, phone);
      const other = await register(a.url);
      const otherSocket = await socket(a.url, other);

      const tablet = await login(a.url, username, "password-123", "tablet");
      const dropped = await phoneSocket.revoked;
      expect(dropped.reason).toBe("session_replaced");
      expect(dropped.message).toMatch(/another device/);
      expect(dropped.disconnectReason).toBe("io server disconnect");
      for (const node of [a, b]) {
        expect((await me(node, phone)).body.error.code).toBe("SESSION_REVOKED");
        expect((await me(node, tablet)).status).toBe(200);
      }
      expect((await refresh(a, phone)).body.error.code).toBe("REFRESH_INVALID");
      expect((await refresh(b, laptop)).body.error.code).toBe("REFRESH_INVALID");
      await socket(b.url, tablet);
      const sessions = await call(a.url, "GET", "/sessions", { token: tablet.accessToken });
      expect(sessions.body.map((s: { device: string }) => s.device)).toEqual(["tablet"]);
      // another user is untouched
      expect(otherSocket.socket.connected).toBe(true);
      expect(otherSocket.revocations).toEqual([]);
    });

    it("concurrent logins leave exactly one live session: the newest, answered 200", async () => {
      const username = uniqueName("race");
      await register(a.url, username);
      const tries = await Promise.all(
        Array.from({ length: 6 }, (_, i) => call<TokenPair>(i % 2 ? b.url : a.url, "POST", "/auth/login", { body: { username, password: "password-123", device: `d${i}` } })),
      );
      for (const t of tries) expect([200, 401]).toContain(t.status);
      for (const t of tries.filter((t) => t.status === 401)) expect(t.body).toMatchObject({ error: { code: "SESSION_REVOKED" } });
      const answered = tries.filter((t) => t.status === 200).map((t) => t.body);
      const alive = [];
      for (const pair of answered) if ((await me(a, pair)).status === 200) alive.push(pair);
      expect(alive).toHaveLength(1);
      const sessions = await call(b.url, "GET", "/sessions", { token: alive[0]!.accessToken });
      expect(sessions.body.map((s: { sessionId: string }) => s.sessionId)).toEqual([alive[0]!.sessionId]);
    });
  });

  describe("USER_BANNED carries until and reason", () => {
    it("a ban with a reason and an end: login refused with both", async () => {
      const username = uniqueName("banned");
      const p = await register(a.url, username);
      const until = new Date(Date.now() + 3_600_000).toISOString();
      expect((await call(a.url, "POST", `/admin/users/${p.user.id}/ban`, { token: admin.accessToken, body: { reason: "griefing", until } })).status).toBe(202);
      for (const node of [a, b]) {
        const r = await call(node.url, "POST", "/auth/login", { body: { username, password: "password-123" } });
        expect(r.status).toBe(403);
        expect(r.body.error).toEqual({ code: "USER_BANNED", message: expect.any(String), until, reason: "griefing" });
      }
    });

    it("a permanent ban without a reason: until and reason are null", async () => {
      const username = uniqueName("banned");
      const p = await register(a.url, username);
      await call(a.url, "POST", `/admin/users/${p.user.id}/ban`, { token: admin.accessToken, body: {} });
      const r = await call(b.url, "POST", "/auth/login", { body: { username, password: "password-123" } });
      expect(r.body.error).toMatchObject({ code: "USER_BANNED", until: null, reason: null });
    });

    it("a refresh that meets the ban (a session the ban did not end) is refused with both too", async () => {
      const p = await register(a.url, uniqueName("banned"));
      const until = new Date(Date.now() + 600_000).toISOString();
      await call(a.url, "POST", `/admin/users/${p.user.id}/ban`, { token: admin.accessToken, body: { reason: "bots", until } });
      // A ban ends every session; a session appearing after it (as a racing login's would) must still be refused at refresh.
      const user = (await a.app.store.getUser(p.user.id))!;
      const sessionId = newSessionId(user.id);
      const refreshToken = newRefreshToken(sessionId);
      const now = Date.now();
      const created = await a.app.store.createSession(
        { id: sessionId, userId: user.id, device: "late", refreshHash: refreshToken.hash, now, expiresAt: now + 600_000 },
        user.version,
      );
      expect(created.status).toBe("ok");
      const r = await call(b.url, "POST", "/auth/refresh", { body: { refreshToken: refreshToken.token } });
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ code: "USER_BANNED", until, reason: "bots" });
    });
  });

  describe("GET /admin/users", () => {
    it("finds users by prefix, online or offline, with role and ban; guests while online", async () => {
      const stem = uniqueName("Find");
      const offline = await register(a.url, `${stem}_off`);
      const online = await register(a.url, `${stem}_on`);
      const banned = await register(a.url, `${stem}_zban`);
      await socket(b.url, online);
      const until = new Date(Date.now() + 60_000).toISOString();
      await call(a.url, "POST", `/admin/users/${banned.user.id}/ban`, { token: admin.accessToken, body: { reason: "spam", until } });

      const r = await call(b.url, "GET", `/admin/users?query=${stem.toLowerCase()}`, { token: admin.accessToken });
      expect(r.status).toBe(200);
      expect(r.body).toEqual([
        { userId: offline.user.id, username: `${stem}_off`, role: "player", online: false, ban: null },
        { userId: online.user.id, username: `${stem}_on`, role: "player", online: true, ban: null },
        { userId: banned.user.id, username: `${stem}_zban`, role: "player", online: false, ban: { until, reason: "spam" } },
      ]);
      const limited = await call(a.url, "GET", `/admin/users?query=${stem.toUpperCase()}&limit=1`, { token: admin.accessToken });
      expect(limited.body.map((u: { userId: string }) => u.userId)).toEqual([offline.user.id]);

      // unbanned: the row says so at once
      await call(a.url, "DELETE", `/admin/users/${banned.user.id}/ban`, { token: admin.accessToken });
      const after = await call(b.url, "GET", `/admin/users?query=${stem}_z`, { token: admin.accessToken });
      expect(after.body).toEqual([expect.objectContaining({ userId: banned.user.id, ban: null })]);

      const guest = (await call<TokenPair>(a.url, "POST", "/auth/guest", { body: {} })).body;
      await socket(a.url, guest);
      const guests = await call(a.url, "GET", `/admin/users?query=${guest.user.username}`, { token: admin.accessToken });
      expect(guests.body).toEqual([{ userId: guest.user.id, username: guest.user.username, role: "player", online: true, ban: null }]);
    });

    it("is for admins only, and validates its query", async () => {
      const player = await register(a.url);
      expect((await call(a.url, "GET", "/admin/users?query=a", { token: player.accessToken })).body.error.code).toBe("FORBIDDEN");
      expect((await call(a.url, "GET", "/admin/users?query=a")).body.error.code).toBe("TOKEN_MISSING");
      for (const qs of ["query=a%20b", "query=a&limit=0", "query=a&limit=101", "query=a&query=b", `query=${"x".repeat(33)}`]) {
        const r = await call(a.url, "GET", `/admin/users?${qs}`, { token: admin.accessToken });
        expect(r.status, qs).toBe(400);
        expect(r.body.error.code).toBe("VALIDATION_FAILED");
      }
      expect((await call(a.url, "GET", "/admin/users", { token: admin.accessToken })).status).toBe(200);
    });
  });
});
