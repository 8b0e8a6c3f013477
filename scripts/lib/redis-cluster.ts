/**
 * Starts a throwaway local Redis Cluster (tests, `npm run cluster -- --redis-cluster`, the
 * benchmarks): N primaries + R replicas each, on free ports, no persistence, created with
 * `redis-cli --cluster create`, and resolves only once every slot is served and every replica
 * is in sync with its primary (a revocation WAITs for one). Binary: $REDIS_CLI_BIN or `redis-cli`.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { freePort, startRedis, type RedisProcess } from "./redis-server";

const run = promisify(execFile);
const HEALTHY_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

export interface RedisClusterOptions {
  /** default 3 */
  primaries?: number;
  /** default 1 */
  replicasPerPrimary?: number;
  /** cluster-node-timeout in ms (how fast a dead primary is failed over); default 2000 */
  nodeTimeoutMs?: number;
}

export interface ClusterShard {
  primary: RedisProcess;
  replicas: RedisProcess[];
  /** slot ranges [from, to] served by this shard */
  slots: [number, number][];
}

export interface RedisClusterProcess {
  /** every redis-server of the cluster, in start order */
  servers: RedisProcess[];
  /** redis://127.0.0.1:<port> of every server: seeds for REDIS_CLUSTER_NODES */
  urls: string[];
  /** the value for REDIS_CLUSTER_NODES */
  nodesEnv: string;
  /** who is primary of what right now (after a failover the roles have moved) */
  shards(): Promise<ClusterShard[]>;
  /** the shard serving `key`'s slot */
  shardOf(key: string): Promise<ClusterShard>;
  /**
   * resolves once every slot is served by a live primary with at least `replicas` live replicas
   * in sync (default: as many as it was created with; less after a failover until the old
   * primary is back as a replica)
   */
  waitUntilHealthy(opts?: { replicas?: number; timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterProcess> {
  const primaries = opts.primaries ?? 3;
  const replicasPerPrimary = opts.replicasPerPrimary ?? 1;
  const count = primaries * (1 + replicasPerPrimary);
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-redis-cluster-"));
  const servers: RedisProcess[] = [];
  const stopAll = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      servers.push(
        await startRedis({
          port,
          args: [
            "--cluster-enabled", "yes",
            "--cluster-config-file", join(dir, `nodes-${port}.conf`),
            "--cluster-node-timeout", String(opts.nodeTimeoutMs ?? 2000),
            // A replica frozen for a while (tests SIGSTOP one) must still be allowed to take over.
            "--cluster-replica-validity-factor", "0",
            "--dir", dir,
          ],
        }),
      );
    }
    const cli = process.env.REDIS_CLI_BIN || "redis-cli";
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
    await run(cli, ["--cluster", "create", ...addresses, "--cluster-replicas", String(replicasPerPrimary), "--cluster-yes"]).catch((err: Error & { stderr?: string; stdout?: string }) => {
      throw new Error(`redis-cli --cluster create failed (install redis-tools or set REDIS_CLI_BIN): ${err.message}\n${err.stdout ?? ""}${err.stderr ?? ""}`);
    });
    const cluster = handle(servers, replicasPerPrimary, stopAll);
    await cluster.waitUntilHealthy();
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function handle(servers: RedisProcess[], replicasPerPrimary: number, stop: () => Promise<void>): RedisClusterProcess {
  const byPort = new Map(servers.map((s) => [s.port, s]));

  /** One-off admin connection to a server; null if it does not answer (killed, frozen). */
  async function ask<T>(server: RedisProcess, fn: (c: Redis) => Promise<T>): Promise<T | null> {
    const c = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 500, commandTimeout: 500, retryStrategy: () => null });
    c.on("error", () => undefined);
    try {
      await c.connect();
      return await fn(c);
    } catch {
      return null;
    } finally {
      c.disconnect();
    }
  }

  async function shards(): Promise<ClusterShard[]> {
    for (const s of servers) {
      const text = await ask(s, (c) => c.cluster("NODES") as Promise<string>);
      if (text) return parseNodes(text, byPort);
    }
    throw new Error("no server of the Redis Cluster answers");
  }

  async function healthy(minReplicas: number): Promise<boolean> {
    const all = await shards();
    let covered = 0;
    for (const shard of all) {
      if (shard.replicas.length < minReplicas) return false;
      const ok = await ask(shard.primary, async (c) => (await c.cluster("INFO")).includes("cluster_state:ok"));
      if (!ok) return false;
      covered += shard.slots.reduce((n, [a, b]) => n + b - a + 1, 0);
      for (const r of shard.replicas) {
        const info = await ask(r, (c) => c.info("replication"));
        if (info === null) return false; // listed but not answering: not in sync
        if (!info.includes("master_link_status:up") || info.includes("master_sync_in_progress:1")) return false;
      }
    }
    return covered === 16384;
  }

  return {
    servers,
    urls: servers.map((s) => s.url),
    nodesEnv: servers.map((s) => s.url).join(","),
    shards,
    async shardOf(key) {
      let slot: number | null = null;
      for (const s of servers) if (slot === null) slot = await ask(s, (c) => c.cluster("KEYSLOT", key) as Promise<number>);
      const all = await shards();
      const found = all.find((sh) => slot !== null && sh.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!found) throw new Error(`no shard serves the slot of ${key}`);
      return found;
    },
    async waitUntilHealthy({ replicas = replicasPerPrimary, timeoutMs = HEALTHY_TIMEOUT_MS } = {}) {
      const deadline = Date.now() + timeoutMs;
      while (!(await healthy(replicas).catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`the Redis Cluster was not healthy within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, POLL_MS)); // polling the cluster's own state: no event to await
      }
    },
    stop,
  };
}

/** CLUSTER NODES -> shards, skipping failed nodes and nodes we did not start. */
function parseNodes(text: string, byPort: Map<number, RedisProcess>): ClusterShard[] {
  const lines = text.trim().split("\n").map((l) => l.split(" "));
  const port = (addr: string) => Number(addr.split("@")[0]!.split(":")[1]);
  const shardsById = new Map<string, ClusterShard>();
  for (const [id, addr, flags, , , , , , ...slots] of lines) {
    if (!flags!.includes("master") || flags!.includes("fail") || slots.length === 0) continue;
    const server = byPort.get(port(addr!));
    if (!server) continue;
    const ranges = slots
      .filter((s) => !s.startsWith("["))
      .map((s) => {
        const [a, b] = s.split("-").map(Number);
        return [a!, b ?? a!] as [number, number];
      });
    shardsById.set(id!, { primary: server, replicas: [], slots: ranges });
  }
  for (const [, addr, flags, masterId] of lines) {
    if (!flags!.includes("slave") || flags!.includes("fail")) continue;
    const server = byPort.get(port(addr!));
    const shard = shardsById.get(masterId!);
    if (server && shard) shard.replicas.push(server);
  }
  return [...shardsById.values()];
}
