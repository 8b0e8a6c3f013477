/**
 * Presence on one real Redis shared by two "nodes": a user's online sessions are read from a
 * per-user index at the cost of that user's sockets (not the cluster's), across nodes, and a
 * dead node's sockets stop counting once its hash is gone (expired with its heartbeat).
 */
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisPresence, type PresenceEntry } from "../../server/realtime/presence";
import { startRedis, type RedisProcess } from "../helpers/redis-server";

describe("RedisPresence per-user index", () => {
  let redis: RedisProcess;
  const clients: Redis[] = [];
  const presences: RedisPresence[] = [];
  const log = pino({ level: "silent" });
  const client = () => {
    const c = new Redis(redis.url);
    clients.push(c);
    return c;
  };
  const nodePresence = (nodeId: string) => {
    const p = new RedisPresence(client(), nodeId, log, "t:");
    presences.push(p);
    return p;
  };
  const entry = (socketId: string, userId: string, sessionId: string, nodeId: string): PresenceEntry => ({ socketId, userId, username: userId, sessionId, nodeId, connectedAt: Date.now() });
  const calls = async (c: Redis, command: string) => Number(/calls=(\d+)/.exec((await c.info("commandstats")).split("\n").find((l) => l.startsWith(`cmdstat_${command}:`)) ?? "")?.[1] ?? 0);

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const p of presences) await p.close();
    for (const c of clients) c.disconnect();
    await redis?.stop();
  });

  it("sees a user's sessions on every node, reading only that user's entries", async () => {
    const a = nodePresence("node-a");
    const b = nodePresence("node-b");
    a.add(entry("s1", "alice", "phone", "node-a"));
    b.add(entry("s2", "alice", "laptop", "node-b"));
    // Many other players online: a read for alice must not touch them.
    for (let i = 0; i < 200; i++) (i % 2 ? a : b).add(entry(`o${i}`, `other${i}`, `sess${i}`, i % 2 ? "node-a" : "node-b"));
    await expect.poll(() => a.sessionsOnline("alice")).toEqual(new Set(["phone", "laptop"]));
    await b.sessionsOnline("nobody"); // b's own batch written too

    const probe = client();
    const before = { hgetall: await calls(probe, "hgetall"), hexists: await calls(probe, "hexists") };
    expect(await b.sessionsOnline("alice")).toEqual(new Set(["phone", "laptop"]));
    expect(await calls(probe, "hgetall")).toBe(before.hgetall + 1);
    expect(await calls(probe, "hexists")).toBe(before.hexists + 2);

    b.remove("s2");
    expect(await b.sessionsOnline("alice")).toEqual(new Set(["phone"]));
    expect(await a.sessionsOnline("other1")).toEqual(new Set(["sess1"]));
  });

  it("writes a batch with one HSET / HDEL per user, however many of the user's sockets it holds", async () => {
    const e = nodePresence("node-e");
    const probe = client();
    await e.sessionsOnline("nobody"); // nothing pending
    const hset0 = await calls(probe, "hset");
    for (let i = 0; i < 50; i++) e.add(entry(`e${i}`, "carol", `sess-e${i}`, "node-e"));
    await e.sessionsOnline("nobody"); // writes the batch
    // the node hash and carol's index: one HSET each
    expect(await calls(probe, "hset")).toBe(hset0 + 2);
    expect((await probe.hkeys("t:presence:user:carol")).length).toBe(50);

    const hdel0 = await calls(probe, "hdel");
    for (let i = 0; i < 20; i++) e.remove(`e${i}`);
    e.add(entry("e-new", "carol", "sess-new", "node-e"));
    expect((await e.sessionsOnline("carol")).size).toBe(31);
    expect(await calls(probe, "hdel")).toBe(hdel0 + 2);
    expect((await probe.hkeys("t:presence:user:carol")).sort()).toEqual([...Array.from({ length: 30 }, (_, i) => `e${i + 20}`), "e-new"].sort());
  });

  it("writes nothing for a socket that connected and left within one batch", async () => {
    const f = nodePresence("node-f");
    const probe = client();
    await f.sessionsOnline("nobody");
    const before = { hset: await calls(probe, "hset"), hdel: await calls(probe, "hdel") };
    f.add(entry("f1", "dave", "sess-f1", "node-f"));
    f.add(entry("f2", "dave", "sess-f2", "node-f"));
    f.remove("f1");
    expect(await f.sessionsOnline("dave")).toEqual(new Set(["sess-f2"]));
    expect(await probe.hkeys("t:presence:user:dave")).toEqual(["f2"]);
    expect(await calls(probe, "hset")).toBe(before.hset + 2); // node hash + dave's index, f2 only
    expect(await calls(probe, "hdel")).toBe(before.hdel);
  });

  it("a dead node's sockets stop counting when its hash expires, and leave the index", async () => {
    const c = nodePresence("node-c");
    const d = nodePresence("node-d");
    c.add(entry("c1", "bob", "tablet", "node-c"));
    d.add(entry("d1", "bob", "console", "node-d"));
    await expect.poll(() => d.sessionsOnline("bob")).toEqual(new Set(["tablet", "console"]));
    // node-c dies: no close(), its heartbeat stops and its hash expires (done here at once).
    const probe = client();
    await probe.del("t:presence:node-c");
    expect(await d.sessionsOnline("bob")).toEqual(new Set(["console"]));
    await expect.poll(() => probe.hkeys("t:presence:user:bob")).toEqual(["d1"]);
  });
});
