/**
 * The cluster suites run once per Redis topology, from one body written once (issue 9): one
 * Redis primary (REDIS_URL) and a Redis Cluster of 3 primaries + 3 replicas (REDIS_CLUSTER_NODES).
 * `redisUnderTest` gives a test the same handle on "the Redis" whichever it is: every server of it.
 */
import { Cluster, Redis } from "ioredis";
import type { RedisProcess } from "../../scripts/lib/redis-server";
import { startCluster, type AnyLocalCluster } from "./cluster";

export const TOPOLOGIES = [
  { name: "one Redis primary", redisCluster: false },
  { name: "a Redis Cluster (3 primaries + 3 replicas)", redisCluster: true },
] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export function startClusterOn(topology: Topology, nodes: number, env: Record<string, string> = {}): Promise<AnyLocalCluster> {
  return topology.redisCluster ? startCluster(nodes, env, { redisCluster: true }) : startCluster(nodes, env);
}

export interface RedisUnderTest {
  /** every redis-server: the one, or all six of the cluster */
  servers: RedisProcess[];
  /** a client for assertions: Redis, or Cluster on a cluster (closed by the caller) */
  client(): Redis | Cluster;
  /** `fn` on each server's own connection, for per-server commands (CLIENT KILL, ACL, PUBSUB) */
  onEachServer<T>(fn: (c: Redis) => Promise<T>): Promise<T[]>;
  /** SIGTERM every server */
  stop(): Promise<void>;
  /** starts every server again (no persistence: empty; a cluster keeps its slot map) and waits until it serves */
  restart(): Promise<void>;
  /** SIGSTOP every server: hung, connections open */
  pause(): void;
  resume(): void;
}

const direct = (url: string) => {
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  c.on("error", () => undefined);
  return c;
};

export function redisUnderTest(cluster: AnyLocalCluster): RedisUnderTest {
  const servers = cluster.topology === "single" ? [cluster.redis] : cluster.redisCluster.servers;
  return {
    servers,
    client: () => {
      if (cluster.topology === "single") return direct(cluster.redis.url);
      const c = new Cluster(servers.map((s) => ({ host: "127.0.0.1", port: s.port })), { redisOptions: { maxRetriesPerRequest: 1 } });
      c.on("error", () => undefined);
      return c;
    },
    onEachServer: (fn) =>
      Promise.all(
        servers.map(async (s) => {
          const c = direct(s.url);
          try {
            return await fn(c);
          } finally {
            c.disconnect();
          }
        }),
      ),
    stop: async () => void (await Promise.all(servers.map((s) => s.stop()))),
    restart: async () => {
      await Promise.all(servers.map((s) => s.stop()));
      await Promise.all(servers.map((s) => s.restart()));
      if (cluster.topology === "redis-cluster") await cluster.redisCluster.waitUntilHealthy();
    },
    pause: () => servers.forEach((s) => s.pause()),
    resume: () => servers.forEach((s) => s.resume()),
  };
}
