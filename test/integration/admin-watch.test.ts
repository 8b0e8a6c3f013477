/**
 * The admin dashboard's online list pushed over the admin's socket (`admin:watch`), on two
 * in-process nodes sharing one real Redis (and the Redis adapter): only a user whose record is an
 * admin's may watch; a player connecting or leaving on the other node is pushed without any
 * request; pushes are coalesced under churn; a revoked admin's socket stops receiving.
 */
import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AccessClaims, TokenPair } from "../../shared/claims";
import type { OnlinePlayer } from "../../shared/protocol";
import { ADMINS_ROOM, PUSH_INTERVAL_MS } from "../../server/realtime/admin-watch";
import { adminLogin, call, register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { connect, emitAck, nextEvent, type TestSocket } from "../helpers/sockets";
import { waitFor } from "../helpers/wait";

describe("admin:watch (two nodes, one Redis)", () => {
  let redis: RedisProcess;
  let a: TestNode;
  let b: TestNode;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    a = await startNode({ REDIS_URL: redis.url, NODE_ID: "watch-a" });
    b = await startNode({ REDIS_URL: redis.url, NODE_ID: "watch-b" });
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await b?.close();
    await a?.close();
    await redis?.stop();
  });

  async function socket(node: TestNode, pair: TokenPair): Promise<TestSocket> {
    const s = await connect(node.url, pair.accessToken);
    open.push(s);
    return s;
  }

  /** An admin socket on node A, watching; every list it is pushed, in order. */
  async function watchingAdmin() {
    const pair = await adminLogin(a.url);
    const s = await socket(a, pair);
    const lists: OnlinePlayer[][] = [];
    s.socket.on("admin:players", (list: OnlinePlayer[]) => lists.push(list));
    const first = nextEvent<OnlinePlayer[]>(s.socket, "admin:players");
    expect(await emitAck(s.socket, "admin:watch", {})).toEqual({ ok: true });
    await first;
    return { s, pair, lists, last: () => lists.at(-1) ?? [] };
  }
  const has = (list: OnlinePlayer[], userId: string) => list.find((p) => p.userId === userId);

  it("refuses a player, and a player's token that claims the admin role: the user record decides", async () => {
    const player = await register(a.url);
    const s = await socket(a, player);
    expect(await emitAck(s.socket, "admin:watch", {})).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect((await emitAck(s.socket, "admin:watch", "all")).error).toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringMatching(/^Invalid payload: /) });

    // Signed with the real key, so only the record can tell it is not an admin's.
    const claims = jwt.decode(player.accessToken) as AccessClaims;
    const forged = a.app.tokens.issue({ userId: claims.sub, sessionId: claims.sid, role: "admin", version: claims.ver, notBeforeIat: claims.iat }).token;
    const f = await socket(a, { ...player, accessToken: forged });
    const pushed: unknown[] = [];
    f.socket.on("admin:players", (l) => pushed.push(l));
    expect(await emitAck(f.socket, "admin:watch", {})).toMatchObject({ ok: false, error: { code: "FORBIDDEN" } });
    expect(a.app.io.of("/").adapter.rooms.get(ADMINS_ROOM)?.has(f.socket.id!)).toBeFalsy();
    expect(pushed).toEqual([]);
  });

  it("pushes a player who connects on the other node, then their leaving, with no request from the admin", async () => {
    const admin = await watchingAdmin();
    const player = await register(b.url);
    const p = await socket(b, player);
    const row = await waitFor(() => has(admin.last(), player.user.id), { timeoutMs: 3000 });
    expect(row.sessions).toEqual([expect.objectContaining({ sessionId: player.sessionId, nodeId: "watch-b" })]);
    p.close();
    await waitFor(() => !has(admin.last(), player.user.id), { timeoutMs: 3000 });
  });

  it("coalesces: players connecting one after another on the other node make a few pushes a second, not one each", async () => {
    const admin = await watchingAdmin();
    const players = await Promise.all(Array.from({ length: 25 }, () => register(b.url)));
    const before = admin.lists.length;
    const started = Date.now();
    // One at a time: each lands in its own presence batch (Redis writes every 50 ms) and signal.
    for (const pair of players) {
      await socket(b, pair);
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => players.every((pair) => has(admin.last(), pair.user.id)), { timeoutMs: 3000 });
    const elapsed = Date.now() - started;
    const pushes = admin.lists.length - before;
    expect(elapsed).toBeGreaterThan(25 * 20);
    expect(pushes).toBeLessThanOrEqual(Math.ceil(elapsed / PUSH_INTERVAL_MS) + 1);
    expect(pushes).toBeLessThan(players.length / 2);
  });

  it("a revoked admin's socket is dropped and leaves the watchers; another admin session keeps watching", async () => {
    const revoked = await watchingAdmin();
    const still = await watchingAdmin();
    const rooms = a.app.io.of("/").adapter.rooms;
    expect(rooms.get(ADMINS_ROOM)?.has(revoked.s.socket.id!)).toBe(true);
    const ops = await adminLogin(b.url);
    const r = await call(b.url, "POST", `/admin/sessions/${revoked.pair.sessionId}/revoke`, { token: ops.accessToken, body: {} });
    expect(r.status).toBe(202);
    expect((await revoked.s.revoked).reason).toBe("session_revoked");
    expect(rooms.get(ADMINS_ROOM)?.has(revoked.s.socket.id!)).toBeFalsy();
    const pushedBefore = revoked.lists.length;
    const player = await register(b.url);
    await socket(b, player);
    await waitFor(() => has(still.last(), player.user.id), { timeoutMs: 3000 });
    expect(revoked.lists.length).toBe(pushedBefore);
  });
});
