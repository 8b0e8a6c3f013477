/**
 * Anyone with access to Redis can PUBLISH on the revocation channel. A garbled or hostile
 * message is dropped (logged without its content, counted in
 * gatehouse_revocation_feed_rejected_total), never applied: the node neither crashes nor
 * changes what it admits. A well-formed event with a seq far ahead is a gap (resync), and the
 * node then counts from the store's seq again instead of believing it is ahead of the store.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { adminLogin, call, register, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { connect, emitAck, type TestSocket } from "../helpers/sockets";

describe("hostile messages on the revocation feed", () => {
  let redis: RedisProcess;
  let node: TestNode;
  let pub: Redis;
  let player: TokenPair;
  let socket: TestSocket;

  beforeAll(async () => {
    redis = await startRedis();
    node = await startNode({ REDIS_URL: redis.url });
    pub = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    player = await register(node.url, uniqueName("target"));
    socket = await connect(node.url, player.accessToken);
  });
  afterAll(async () => {
    socket?.close();
    pub?.disconnect();
    await node?.close();
    await redis?.stop();
  });

  const rejected = async (): Promise<number> => {
    const text = (await call<string>(node.url, "GET", "/metrics")).body;
    const line = text.split("\n").find((l) => l.startsWith("gatehouse_revocation_feed_rejected_total"));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  };
  const storeSeq = async () => Number((await pub.get("gh:seq:{g}")) ?? 0);

  /** The player's token still works over HTTP and on its live socket. */
  async function stillAdmitted(): Promise<void> {
    expect((await call(node.url, "GET", "/me", { token: player.accessToken })).status).toBe(200);
    expect(await emitAck(socket.socket, "auth:refresh", { token: player.accessToken })).toMatchObject({ ok: true });
    expect(socket.socket.connected).toBe(true);
    expect(socket.revocations).toEqual([]);
  }

  it("drops garbled and out-of-range messages, counts them, logs them without content, applies none", async () => {
    const now = Date.now();
    const user = (patch: Record<string, unknown>) =>
      JSON.stringify({
        seq: 1,
        kind: "user",
        userId: player.user.id,
        version: 99,
        tokenValidAfter: Math.ceil(now / 1000) + 3600,
        reason: "banned",
        ban: { until: null },
        note: "HOSTILE-MARKER",
        at: now,
        expiresAt: now + 3_600_000,
        nodeId: "evil",
        ...patch,
      });
    const seqBefore = node.app.revocations.seq;
    const before = await rejected();
    const messages = [
      user({ seq: 1e300 }),
      user({ seq: -1 }),
      user({ seq: seqBefore + 1, expiresAt: -1e300 }),
      user({ seq: seqBefore + 1, expiresAt: 1e300 }),
      user({ seq: seqBefore + 1, version: 2 ** 60 }),
      user({ seq: seqBefore + 1, pad: "x".repeat(1024 * 1024) }),
      "HOSTILE-MARKER not json {",
      JSON.stringify([1, 2, 3]),
    ];
    for (const m of messages) await pub.spublish("gh:revocations:{g}", m);
    // Confirmations for this node's events: garbage there is dropped and counted too.
    for (const m of ["1e300", "-1", "HOSTILE-MARKER"]) await pub.spublish(`gh:acks:{g}:${node.app.config.nodeId}`, m);
    await expect.poll(rejected, { timeout: 5000 }).toBe(before + messages.length + 3);

    await stillAdmitted();
    expect(node.app.revocations.inSync).toBe(true);
    expect(node.app.revocations.seq).toBe(seqBefore);
    expect(node.logs.some((l) => l.includes("HOSTILE-MARKER") || l.includes("xxxxxxxx"))).toBe(false);
    expect(node.logs.filter((l) => l.includes("dropped a malformed revocation")).length).toBeGreaterThanOrEqual(messages.length + 3);
  });

  it("a well-formed event with a seq far ahead causes one resync, after which the node counts from the store's seq", async () => {
    const now = Date.now();
    await pub.spublish(
      "gh:revocations:{g}",
      JSON.stringify({ seq: Number.MAX_SAFE_INTEGER, kind: "session", sessionId: "nobody", reason: "session_revoked", at: now, expiresAt: now + 60_000, nodeId: "evil" }),
    );
    await expect.poll(() => node.logs.some((l) => l.includes(`seq gap`) && l.includes(String(Number.MAX_SAFE_INTEGER))), { timeout: 5000 }).toBe(true);
    await expect.poll(() => node.app.revocations.inSync, { timeout: 5000 }).toBe(true);
    expect(node.app.revocations.seq).toBe(await storeSeq());

    // Real events are followed again: a kick moves the node's seq with the store's.
    const other = await register(node.url, uniqueName("kicked"));
    const admin = await adminLogin(node.url);
    expect((await call(node.url, "POST", `/admin/users/${other.user.id}/kick`, { token: admin.accessToken, body: {} })).status).toBe(202);
    await expect.poll(() => node.app.revocations.seq, { timeout: 5000 }).toBe(await storeSeq());

    // The next feed loss resyncs normally: no "store went back" verdict, so no revoke-all.
    const lossesBefore = node.logs.filter((l) => l.includes("revocation state loaded")).length;
    await pub.client("KILL", "TYPE", "pubsub");
    await expect.poll(() => node.logs.filter((l) => l.includes("revocation state loaded")).length, { timeout: 10_000 }).toBeGreaterThan(lossesBefore);
    await expect.poll(() => node.app.revocations.inSync, { timeout: 5000 }).toBe(true);
    expect(node.logs.some((l) => l.includes("store lost revocation state"))).toBe(false);
    expect(node.app.revocations.seq).toBe(await storeSeq());
    await stillAdmitted();
  });
});
