/**
 * Everything outside the store that talks to Redis, on a real Redis Cluster (3 primaries): the
 * socket.io sharded adapter between two servers, the room bus (a room's traffic reaches only the
 * nodes listening to it, counted with PUBSUB SHARDNUMSUB and by messages received), presence, rate
 * limits and the matchmaking queue (no CROSSSLOT anywhere), all through createRedisClients.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Cluster, Redis } from "ioredis";
import { pino } from "pino";
import { Server as IoServer } from "socket.io";
import { io as ioClient, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../server/config";
import { RedisMatchQueue } from "../../server/game/matchmaker";
import { consume, createRateLimits, RateLimitedError } from "../../server/http/rate-limits";
import { RedisPresence, type PresenceEntry } from "../../server/realtime/presence";
import { createRedisClients, type RedisClients } from "../../server/redis-clients";
import { RedisRoomBus } from "../../server/rooms/bus";
import { startRedisCluster, type RedisClusterProcess } from "../helpers/redis-server";
import { waitFor } from "../helpers/wait";

const log = pino({ level: "silent" });

describe("Redis Cluster: adapter, room bus, presence, limits, queue", () => {
  let cluster: RedisClusterProcess;
  const opened: RedisClients[] = [];
  const admins: Cluster[] = [];
  const closers: (() => Promise<void> | void)[] = [];

  const clients = async () => {
    const c = createRedisClients({ clusterNodes: cluster.urls.slice(0, 2) }, log);
    opened.push(c);
    await c.ready();
    return c;
  };
  const admin = () => {
    const c = new Cluster(cluster.urls.slice(0, 1).map((u) => ({ host: "127.0.0.1", port: Number(new URL(u).port) })));
    c.on("error", () => undefined);
    admins.push(c);
    return c;
  };
  /** PUBSUB SHARDNUMSUB on the primary that owns the channel's slot (counts that shard's subscribers). */
  const shardSubscribers = async (channel: string): Promise<number> => {
    const shard = await cluster.shardOf(channel);
    const c = new Redis(shard.primary.url, { retryStrategy: () => null });
    c.on("error", () => undefined);
    try {
      const reply = (await c.call("PUBSUB", "SHARDNUMSUB", channel)) as [string, number];
      return Number(reply[1]);
    } finally {
      c.disconnect();
    }
  };

  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0 });
  }, 60_000);
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    for (const c of opened) await c.quit();
    for (const c of admins) c.disconnect();
    await cluster?.stop();
  });

  it("REDIS_CLUSTER_NODES is what the factory connects to, as a Cluster", async () => {
    const config = loadConfig({ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: cluster.nodesEnv });
    expect(config.redisClusterNodes).toEqual(cluster.urls);
    const c = await clients();
    expect(c.cluster).toBe(true);
    expect(c.limits).toBeInstanceOf(Cluster);
    await c.limits.set("gh:probe", "1");
    expect(await c.limits.get("gh:probe")).toBe("1");
  });

  it("the sharded adapter carries room broadcasts between two socket.io servers; a room's channel has only its members' servers", async () => {
    const start = async () => {
      const http: HttpServer = createServer();
      const io = new IoServer(http);
      const c = await clients();
      io.adapter(c.ioAdapter());
      await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
      closers.push(() => new Promise<void>((r) => io.close(() => r())));
      return { io, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
    };
    const [a, b] = [await start(), await start()];
    const room = "room:{arena:cluster-room}";
    const joinOn = (srv: { io: IoServer; url: string }) =>
      new Promise<Socket>((resolve) => {
        srv.io.once("connection", (s) => void s.join(room));
        const client = ioClient(srv.url, { transports: ["websocket"], forceNew: true });
        closers.push(() => void client.disconnect());
        client.once("connect", () => resolve(client));
      });
    const onB = await joinOn(b);
    const channel = `gh:io#/#${room}#`;
    // Only server B holds a member: only B listens to the room's channel.
    await waitFor(async () => (await shardSubscribers(channel)) === 1, { message: "B subscribed to the room channel" });

    const got = new Promise<string>((resolve) => onB.once("hello", resolve));
    a.io.to(room).emit("hello", "from A");
    expect(await got).toBe("from A");

    // Server-side emits cross too (the namespace channel), both ways.
    const heard = new Promise<string>((resolve) => b.io.on("ping-nodes", (msg: string) => resolve(msg)));
    a.io.serverSideEmit("ping-nodes", "hi B");
    expect(await heard).toBe("hi B");

    // A's member joins too: two subscribers; when B's leaves, one again.
    const onA = await joinOn(a);
    await waitFor(async () => (await shardSubscribers(channel)) === 2, { message: "A subscribed too" });
    onB.disconnect();
    await waitFor(async () => (await shardSubscribers(channel)) === 1, { message: "B unsubscribed after its member left" });
    onA.disconnect();
  });

  it("the room bus: a room's messages reach the nodes listening to it and no other", async () => {
    const nodes = (await Promise.all([clients(), clients(), clients()])).map((c) => {
      const bus = new RedisRoomBus(c.adapter[0], c.adapter[1], true);
      const received: string[] = [];
      bus.onMessage((topic, msg) => received.push(`${topic} ${msg}`));
      return { bus, received };
    });
    const [n1, n2, n3] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    await n1.bus.join("arena:r1");
    await n2.bus.join("arena:r1");
    await n3.bus.join("arena:r2");
    expect(await shardSubscribers("gh:room:{arena:r1}")).toBe(2);
    expect(await shardSubscribers("gh:room:{arena:r2}")).toBe(1);

    // 40 ticks of node 1's share of r1, then one message on r2 as an end marker for node 3.
    for (let i = 0; i < 40; i++) n1.bus.publish("arena:r1", `share ${i}`);
    n2.bus.publish("arena:r2", "end");
    await waitFor(() => n2.received.length === 40 && n3.received.length === 1, { message: "messages delivered" });
    expect(n2.received[39]).toBe("arena:r1 share 39");
    expect(n1.received).toHaveLength(40); // its own (the room host ignores them by node id)
    expect(n3.received).toEqual(["arena:r2 end"]); // nothing of r1

    // Counted joins: node 1 joined r1 twice, left once: still listening.
    await n1.bus.join("arena:r1");
    n1.bus.leave("arena:r1");
    n2.bus.leave("arena:r1");
    await waitFor(async () => (await shardSubscribers("gh:room:{arena:r1}")) === 1, { message: "node 2 left r1" });
  });

  it("presence works on a cluster: no CROSSSLOT, a user's sessions across nodes, a closed node's sockets gone", async () => {
    const entry = (socketId: string, userId: string, sessionId: string, nodeId: string): PresenceEntry => ({ socketId, userId, username: userId, sessionId, nodeId, connectedAt: Date.now() });
    const a = new RedisPresence((await clients()).limits, "node-a", log, "tc:");
    const b = new RedisPresence((await clients()).limits, "node-b", log, "tc:");
    closers.push(() => a.close(), () => b.close());
    a.add(entry("s1", "alice", "phone", "node-a"));
    b.add(entry("s2", "alice", "laptop", "node-b"));
    for (let i = 0; i < 50; i++) (i % 2 ? a : b).add(entry(`o${i}`, `other${i}`, `sess${i}`, i % 2 ? "node-a" : "node-b"));
    await expect.poll(() => a.sessionsOnline("alice"), { timeout: 5000 }).toEqual(new Set(["phone", "laptop"]));
    await expect.poll(async () => (await b.list()).length, { timeout: 5000 }).toBe(52);
    b.remove("s2");
    expect(await b.sessionsOnline("alice")).toEqual(new Set(["phone"]));
    await a.close();
    expect(await b.sessionsOnline("alice")).toEqual(new Set());
    expect((await b.list()).every((e) => e.nodeId === "node-b")).toBe(true);
  });

  it("rate limits hold across nodes on a cluster (one key per call)", async () => {
    const config = loadConfig({ RATE_LIMIT_LOGIN_IP: "3/1m" });
    const one = createRateLimits(config, (await clients()).limits, "tc:rl:");
    const two = createRateLimits(config, (await clients()).limits, "tc:rl:");
    await consume(one.loginIp, "10.0.0.1");
    await consume(two.loginIp, "10.0.0.1");
    await consume(one.loginIp, "10.0.0.1");
    await expect(consume(two.loginIp, "10.0.0.1")).rejects.toBeInstanceOf(RateLimitedError);
    await consume(two.loginIp, "10.0.0.2"); // another address, its own budget
    // Known addresses (set / get through the limiter) too.
    await one.knownAddresses!.remember("bob|10.0.0.1");
    expect(await two.knownAddresses!.has("bob|10.0.0.1")).toBe(true);
    // Really in Redis, not the in-memory insurance limiter.
    expect(await admin().get("tc:rl:login-ip:10.0.0.1")).toBe("4");
  });

  it("the matchmaking queue pairs players queued through different nodes", async () => {
    const q1 = new RedisMatchQueue((await clients()).limits, "tc:ttt:queue");
    const q2 = new RedisMatchQueue((await clients()).limits, "tc:ttt:queue");
    const x = JSON.stringify({ playerId: "px", userId: "ux", username: "x", nodeId: "n1" });
    const o = JSON.stringify({ playerId: "po", userId: "uo", username: "o", nodeId: "n2" });
    expect(await q1.pair(x, "ux")).toBeNull();
    expect(await q2.pair(o, "uo")).toBe(x);
    expect(await q1.pair(o, "uo")).toBeNull();
    await q2.remove(o);
    expect(await admin().llen("tc:ttt:queue")).toBe(0);
  });
});
