/**
 * The revocation feed at many nodes (issue 9, item 8): what one revocation costs each node,
 * what it costs Redis, and how long the issuer waits for every node's confirmation, as the
 * number of nodes grows. A measurement, not a test: nodes are lightweight subscriber processes
 * (bench/feed/subscriber.ts: receive, validate, confirm) on one machine with Redis.
 *
 *   npm run bench:feed -- [--nodes 3,10,30] [--events 300] [--rate 50] [--redis-cluster] [--out FILE]
 */
import { fork, type ChildProcess } from "node:child_process";
import { writeFileSync, mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { startRedisCluster } from "../scripts/lib/redis-cluster";
import { startRedis } from "../scripts/lib/redis-server";
import { RedisStore } from "../server/store/redis";
import { RedisFeed } from "../server/store/redis-feed";
import { summarize, round, sleep } from "./lib/stats";

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "3,10,30" },
    events: { type: "string", default: "300" },
    rate: { type: "string", default: "50" },
    out: { type: "string", default: "bench/results/feed-latest.json" },
    "redis-cluster": { type: "boolean", default: false },
  },
});
const nodeCounts = args.nodes!.split(",").map(Number);
const events = Number(args.events);
const rate = Number(args.rate);
const subscriberFile = fileURLToPath(new URL("./feed-subscriber.js", import.meta.url));

const live = new Set<ChildProcess>();
process.on("exit", () => live.forEach((p) => p.kill("SIGKILL")));

interface Sub {
  proc: ChildProcess;
  ask(): Promise<{ cpuUs: number; received: number }>;
}

/** One Redis primary, or a local Redis Cluster (3 primaries + 3 replicas): where the feed runs. */
interface Target {
  env: Record<string, string>;
  connect(): Promise<RedisStore>;
  /** the server that carries the feed ({g}'s primary on a cluster), for its CPU */
  feedServerUrl(): Promise<string>;
  stop(): Promise<void>;
}
async function startTarget(cluster: boolean): Promise<Target> {
  if (!cluster) {
    const redis = await startRedis();
    return { env: { REDIS_URL: redis.url }, connect: () => RedisStore.connect({ url: redis.url }), feedServerUrl: async () => redis.url, stop: () => redis.stop() };
  }
  const rc = await startRedisCluster();
  return {
    env: { REDIS_CLUSTER_NODES: rc.nodesEnv },
    connect: () => RedisStore.connect({ clusterNodes: rc.urls }),
    feedServerUrl: async () => (await rc.shardOf("{g}")).primary.url,
    stop: () => rc.stop(),
  };
}

function startSubscriber(target: Target, nodeId: string): Promise<Sub> {
  const proc = fork(subscriberFile, [], { env: { ...process.env, ...target.env, NODE_ID: nodeId }, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  const ask = () =>
    new Promise<{ cpuUs: number; received: number }>((resolve) => {
      const on = (m: { type: string; cpuUs: number; received: number }) => {
        if (m.type !== "cpu") return;
        proc.off("message", on);
        resolve(m);
      };
      proc.on("message", on);
      proc.send({ type: "cpu" });
    });
  return new Promise((resolve, reject) => {
    proc.once("message", () => resolve({ proc, ask }));
    proc.once("exit", (code) => reject(new Error(`subscriber ${nodeId} exited with ${code}`)));
  });
}

/** Redis's own CPU (user + sys), ms. */
async function redisCpuMs(c: Redis): Promise<number> {
  const info = await c.info("cpu");
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (get("used_cpu_user") + get("used_cpu_sys")) * 1000;
}

async function measure(nodes: number) {
  const target = await startTarget(args["redis-cluster"]!);
  const admin = new Redis(await target.feedServerUrl());
  const subs = await Promise.all(Array.from({ length: nodes - 1 }, (_, i) => startSubscriber(target, `sub-${i + 1}`)));
  // The issuer is node 0: it receives its own events too (and confirms them locally).
  const issuer = await target.connect();
  const issuerFeed = RedisFeed.for(issuer);
  const feed = issuerFeed.subscribe((e) => issuerFeed.acknowledge(e, "issuer"), { onLost: () => undefined, onResumed: () => undefined }, { nodeId: "issuer" });
  await feed.ready;
  const revoke = async (i: number) => {
    const t0 = performance.now();
    const e = await issuer.applyRevocation(
      { kind: "session", userId: `bench-user-${i}`, sessionId: `bench-user-${i}.bench-session`, reason: "kicked" },
      { now: Date.now(), markTtlMs: 60_000, nodeId: "issuer" },
    );
    const written = performance.now() - t0;
    const missing = await issuerFeed.confirmApplied(e, 1000);
    return { written, confirmed: performance.now() - t0, missing };
  };
  for (let i = 0; i < 20; i++) await revoke(-1 - i); // warm-up
  // What the subscribers spend doing nothing for as long as the run lasts (timers, GC): subtracted.
  const idleMs = (events / rate) * 1000;
  const idleBefore = await Promise.all(subs.map((s) => s.ask()));
  await sleep(idleMs);
  const idleAfter = await Promise.all(subs.map((s) => s.ask()));
  const idleUs = subs.length ? idleAfter.reduce((n, a, i) => n + (a.cpuUs - idleBefore[i]!.cpuUs), 0) / subs.length : 0;
  const cpuBefore = await Promise.all(subs.map((s) => s.ask()));
  const redisBefore = await redisCpuMs(admin);
  const written: number[] = [];
  const confirmed: number[] = [];
  let unconfirmed = 0;
  for (let i = 0; i < events; i++) {
    const r = await revoke(i);
    written.push(r.written);
    confirmed.push(r.confirmed);
    unconfirmed += r.missing;
    await sleep(1000 / rate);
  }
  const redisAfter = await redisCpuMs(admin);
  const cpuAfter = await Promise.all(subs.map((s) => s.ask()));
  const busyUs = subs.length ? cpuAfter.reduce((n, a, i) => n + (a.cpuUs - cpuBefore[i]!.cpuUs), 0) / subs.length : 0;
  const perNodeUs = Math.max(0, busyUs - idleUs) / events;
  const receivedAll = cpuAfter.every((a, i) => a.received - cpuBefore[i]!.received === events);
  for (const s of subs) s.proc.send({ type: "stop" });
  await Promise.all(subs.map((s) => new Promise((r) => (s.proc.exitCode !== null ? r(null) : s.proc.once("exit", r)))));
  await feed.close();
  await issuerFeed.close();
  await issuer.close();
  admin.disconnect();
  await target.stop();
  const w = summarize(written);
  const c = summarize(confirmed);
  return {
    nodes,
    events,
    receivedAll,
    unconfirmed,
    nodeCpuUsPerEvent: round(perNodeUs, 1),
    redisCpuUsPerEvent: round(((redisAfter - redisBefore) * 1000) / events, 1),
    writtenMs: { p50: round(w.p50), p99: round(w.p99) },
    confirmedMs: { p50: round(c.p50), p99: round(c.p99), max: round(c.max) },
  };
}

const results = [];
console.log(`feed fan-out on ${args["redis-cluster"] ? "a Redis Cluster (3+3)" : "one Redis primary"}: ${events} revocations at ${rate}/s per run; nodes ${nodeCounts.join(", ")} (machine: ${cpus().length} cores)`);
for (const n of nodeCounts) {
  const r = await measure(n);
  results.push(r);
  console.log(
    `${String(n).padStart(3)} nodes: node CPU ${r.nodeCpuUsPerEvent} µs/event, Redis CPU ${r.redisCpuUsPerEvent} µs/event, ` +
      `written p50 ${r.writtenMs.p50} ms, all confirmed p50 ${r.confirmedMs.p50} / p99 ${r.confirmedMs.p99} / max ${r.confirmedMs.max} ms` +
      `${r.receivedAll ? "" : " (SOME EVENTS NOT RECEIVED)"}${r.unconfirmed ? ` (${r.unconfirmed} confirmations missing)` : ""}`,
  );
}
mkdirSync("bench/results", { recursive: true });
writeFileSync(args.out!, JSON.stringify({ at: new Date().toISOString(), topology: args["redis-cluster"] ? "redis-cluster" : "single", cores: cpus().length, cpu: cpus()[0]?.model, results }, null, 2));
console.log(`written to ${args.out}`);
process.exit(results.every((r) => r.receivedAll) ? 0 : 1);
