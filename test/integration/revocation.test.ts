/**
 * Every revocation kind of the contract, on one node, over real HTTP and real
 * socket.io, on both stores: exactly the covered sockets get session:revoked
 * with the right reason and a server disconnect (no auto-reconnect); the others
 * stay up and keep answering; covered access and refresh tokens are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { call, login, register, adminLogin, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { connect, emitAck, refusedCode, type TestSocket } from "../helpers/sockets";

interface Cast {
  a1: TokenPair; // user A, laptop
  a2: TokenPair; // user A, phone
  b: TokenPair; // user B
  sa1: TestSocket;
  sa2: TestSocket;
  sb: TestSocket;
  username: string;
}

describe.each(["memory", "redis"] as const)("revocation on one node (%s store)", (kind) => {
  let node: TestNode;
  let redis: RedisProcess | undefined;
  let admin: TokenPair;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    if (kind === "redis") redis = await startRedis();
    node = await startNode(redis ? { REDIS_URL: redis.url } : {});
    admin = await adminLogin(node.url);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await node?.close();
    await redis?.stop();
  });

  async function cast(): Promise<Cast> {
    const username = uniqueName("a");
    const a1 = await register(node.url, username, "password-123", "laptop");
    const a2 = await login(node.url, username, "password-123", "phone");
    const b = await register(node.url);
    const [sa1, sa2, sb] = await Promise.all([connect(node.url, a1.accessToken), connect(node.url, a2.accessToken), connect(node.url, b.accessToken)]);
    open.push(sa1, sa2, sb);
    return { a1, a2, b, sa1, sa2, sb, username };
  }

  /** The socket got session:revoked with `reason`, then a server disconnect, and will not reconnect. */
  async function expectDropped(s: TestSocket, reason: string) {
    const r = await s.revoked;
    expect(r.reason).toBe(reason);
    expect(r.disconnectReason).toBe("io server disconnect");
    expect(s.socket.active).toBe(false);
  }

  /** Still connected and still answering (an auth:refresh round trip with its own token). */
  async function expectAlive(s: TestSocket, pair: TokenPair) {
    expect(s.socket.connected).toBe(true);
    const ack = await emitAck(s.socket, "auth:refresh", { token: pair.accessToken });
    expect(ack).toMatchObject({ ok: true });
    expect(s.revocations).toEqual([]);
  }

  async function expectTokenRefused(pair: TokenPair, code: string) {
    const me = await call(node.url, "GET", "/me", { token: pair.accessToken });
    expect(me.status).toBe(401);
    expect(me.body.error.code).toBe(code);
    // RFC 6750: a refused access token says so, a revoked session's included
    expect(me.headers.get("www-authenticate")).toBe('Bearer realm="gatehouse", error="invalid_token"');
    const hs = await refusedCode(node.url, pair.accessToken);
    expect(hs.message).toBe(code);
    expect(hs.data).toMatchObject({ code });
  }

  async function expectRefreshRefused(pair: TokenPair, code = "REFRESH_INVALID") {
    const r = await call(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    // RFC 7235: every 401 names its scheme (a ban answers 403)
    expect(r.headers.get("www-authenticate")).toBe(r.status === 401 ? 'Bearer realm="gatehouse"' : null);
    expect(r.body.error.code).toBe(code);
  }

  it("logout ends this device only", async () => {
    const c = await cast();
    const r = await call(node.url, "POST", "/auth/logout", { token: c.a1.accessToken });
    expect(r.status).toBe(204);
    await expectDropped(c.sa1, "logout");
    await expectAlive(c.sa2, c.a2);
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a1, "TOKEN_REVOKED");
    await expectRefreshRefused(c.a1);
    expect((await call(node.url, "GET", "/me", { token: c.a2.accessToken })).status).toBe(200);
  });

  it("logout-all ends every device of the user", async () => {
    const c = await cast();
    expect((await call(node.url, "POST", "/auth/logout-all", { token: c.a2.accessToken })).status).toBe(204);
    await expectDropped(c.sa1, "logout_all");
    await expectDropped(c.sa2, "logout_all");
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a1, "TOKEN_REVOKED");
    await expectTokenRefused(c.a2, "TOKEN_REVOKED");
    await expectRefreshRefused(c.a1);
    await expectRefreshRefused(c.a2);
    // Logging in again right away (same second) works: the new token is not born dead.
    const again = await login(node.url, c.username);
    expect((await call(node.url, "GET", "/me", { token: again.accessToken })).status).toBe(200);
  });

  it("password change kills every other token and hands back a working pair", async () => {
    const c = await cast();
    const r = await call<TokenPair>(node.url, "POST", "/auth/password", {
      token: c.a1.accessToken,
      body: { oldPassword: "password-123", newPassword: "new-password-456" },
    });
    expect(r.status).toBe(200);
    await expectDropped(c.sa1, "password_changed");
    await expectDropped(c.sa2, "password_changed");
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a2, "TOKEN_REVOKED");
    await expectRefreshRefused(c.a2);
    const fresh = await connect(node.url, r.body.accessToken);
    open.push(fresh);
    await expectAlive(fresh, r.body);
    expect((await call(node.url, "POST", "/auth/login", { body: { username: c.username, password: "password-123" } })).status).toBe(401);
    await login(node.url, c.username, "new-password-456");
  });

  it("a wrong old password changes nothing", async () => {
    const c = await cast();
    const r = await call(node.url, "POST", "/auth/password", { token: c.a1.accessToken, body: { oldPassword: "wrong-pass", newPassword: "new-password-456" } });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("CREDENTIALS_INVALID");
    await expectAlive(c.sa1, c.a1);
  });

  it("revoking my stolen phone from my laptop ends only the phone", async () => {
    const c = await cast();
    const list = await call(node.url, "GET", "/sessions", { token: c.a1.accessToken });
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(2);
    const phone = list.body.find((s: any) => s.sessionId === c.a2.sessionId);
    expect(phone).toMatchObject({ device: "phone", current: false, online: true });
    expect(list.body.find((s: any) => s.sessionId === c.a1.sessionId)).toMatchObject({ current: true });
    expect((await call(node.url, "DELETE", `/sessions/${c.a2.sessionId}`, { token: c.a1.accessToken })).status).toBe(204);
    await expectDropped(c.sa2, "session_revoked");
    await expectAlive(c.sa1, c.a1);
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a2, "SESSION_REVOKED");
    await expectRefreshRefused(c.a2);
    const after = await call(node.url, "GET", "/sessions", { token: c.a1.accessToken });
    expect(after.body.map((s: any) => s.sessionId)).toEqual([c.a1.sessionId]);
  });

  it("someone else's session is 404, not revoked", async () => {
    const c = await cast();
    const r = await call(node.url, "DELETE", `/sessions/${c.a1.sessionId}`, { token: c.b.accessToken });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("NOT_FOUND");
    await expectAlive(c.sa1, c.a1);
  });

  it("admin kick ends every session of the user, who may log in again", async () => {
    const c = await cast();
    const r = await call(node.url, "POST", `/admin/users/${c.a1.user.id}/kick`, { token: admin.accessToken, body: { reason: "spam" } });
    expect(r.status).toBe(202);
    await expectDropped(c.sa1, "kicked");
    await expectDropped(c.sa2, "kicked");
    // The admin's reason reaches the player, after the reason's own text.
    expect((await c.sa1.revoked).message).toBe("You were kicked by an admin. Reason: spam");
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a1, "TOKEN_REVOKED");
    await expectRefreshRefused(c.a2);
    const again = await login(node.url, c.username);
    const s = await connect(node.url, again.accessToken);
    open.push(s);
    await expectAlive(s, again);
    const audit = await call(node.url, "GET", "/admin/audit?limit=5", { token: admin.accessToken });
    expect(audit.body[0]).toMatchObject({ action: "kick", target: c.a1.user.id, actorName: "admin" });
  });

  it("admin ban ends every session and refuses login and refresh until unbanned", async () => {
    const c = await cast();
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const r = await call(node.url, "POST", `/admin/users/${c.a1.user.id}/ban`, { token: admin.accessToken, body: { reason: "cheating", until } });
    expect(r.status).toBe(202);
    await expectDropped(c.sa1, "banned");
    await expectDropped(c.sa2, "banned");
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a1, "TOKEN_REVOKED");
    await expectRefreshRefused(c.a2, "USER_BANNED");
    const denied = await call(node.url, "POST", "/auth/login", { body: { username: c.username, password: "password-123" } });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("USER_BANNED");
    expect((await call(node.url, "DELETE", `/admin/users/${c.a1.user.id}/ban`, { token: admin.accessToken })).status).toBe(204);
    const back = await login(node.url, c.username);
    expect((await call(node.url, "GET", "/me", { token: back.accessToken })).status).toBe(200);
  });

  it("admin revoke of one session ends only that session", async () => {
    const c = await cast();
    const r = await call(node.url, "POST", `/admin/sessions/${c.a1.sessionId}/revoke`, { token: admin.accessToken, body: {} });
    expect(r.status).toBe(202);
    await expectDropped(c.sa1, "session_revoked");
    await expectAlive(c.sa2, c.a2);
    await expectAlive(c.sb, c.b);
    await expectTokenRefused(c.a1, "SESSION_REVOKED");
    await expectRefreshRefused(c.a1);
  });

  it("refresh rotation: the new pair works; reusing the old one revokes the session", async () => {
    const c = await cast();
    const rotated = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: c.a1.refreshToken } });
    expect(rotated.status).toBe(200);
    expect(rotated.body.refreshToken).not.toBe(c.a1.refreshToken);
    expect(rotated.body.sessionId).toBe(c.a1.sessionId);
    expect((await call(node.url, "GET", "/me", { token: rotated.body.accessToken })).status).toBe(200);
    // Rotated twice: the first token is no longer a retry within REFRESH_REUSE_GRACE but reuse.
    const again = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: rotated.body.refreshToken } });
    expect(again.status).toBe(200);
    const reuse = await call(node.url, "POST", "/auth/refresh", { body: { refreshToken: c.a1.refreshToken } });
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe("REFRESH_REUSED");
    await expectDropped(c.sa1, "refresh_reused");
    await expectAlive(c.sa2, c.a2);
    await expectTokenRefused(again.body, "SESSION_REVOKED");
    await expectRefreshRefused(again.body);
  });

  it("non-admins get 403 on every admin route", async () => {
    const c = await cast();
    for (const [method, path] of [
      ["GET", "/admin/players"],
      ["POST", `/admin/users/${c.b.user.id}/kick`],
      ["POST", "/admin/revoke-all"],
      ["GET", "/admin/audit"],
    ] as const) {
      const r = await call(node.url, method, path, { token: c.a1.accessToken, body: method === "POST" ? {} : undefined });
      expect(r.status, path).toBe(403);
      expect(r.body.error.code).toBe("FORBIDDEN");
    }
    await expectAlive(c.sb, c.b);
  });

  it("admin players lists who is online with their node", async () => {
    const c = await cast();
    const r = await call(node.url, "GET", "/admin/players", { token: admin.accessToken });
    expect(r.status).toBe(200);
    const a = r.body.find((p: any) => p.userId === c.a1.user.id);
    expect(a.username).toBe(c.username);
    expect(a.sessions.map((s: any) => s.sessionId).sort()).toEqual([c.a1.sessionId, c.a2.sessionId].sort());
    expect(a.sessions[0].nodeId).toBe(node.app.config.nodeId);
  });

  // Last: it kills every token on the node, the admin's included.
  it("revoke-all ends every socket; tokens issued right after work", async () => {
    const c = await cast();
    const r = await call(node.url, "POST", "/admin/revoke-all", { token: admin.accessToken });
    expect(r.status).toBe(202);
    await Promise.all([expectDropped(c.sa1, "revoked_all"), expectDropped(c.sa2, "revoked_all"), expectDropped(c.sb, "revoked_all")]);
    await expectTokenRefused(c.b, "TOKEN_REVOKED");
    await expectTokenRefused(admin, "TOKEN_REVOKED");
    await expectRefreshRefused(c.b);
    // Same second as the revocation: the fresh token must be accepted (iat resolution, pitfall 15).
    const fresh = await login(node.url, c.username);
    const s = await connect(node.url, fresh.accessToken);
    open.push(s);
    await expectAlive(s, fresh);
    admin = await adminLogin(node.url);
    expect((await call(node.url, "GET", "/admin/players", { token: admin.accessToken })).status).toBe(200);

    // A second revoke-all right away (most likely the same second) still ends the tokens issued in between.
    expect((await call(node.url, "POST", "/admin/revoke-all", { token: admin.accessToken })).status).toBe(202);
    await expectDropped(s, "revoked_all");
    await expectTokenRefused(fresh, "TOKEN_REVOKED");
    admin = await adminLogin(node.url);
  });
});
