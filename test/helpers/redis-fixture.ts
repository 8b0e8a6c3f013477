/**
 * A Redis for one describe block: a redis-server or a local Redis Cluster (3 primaries + 3
 * replicas), started before the block and stopped after it, with an admin client to empty it
 * between tests and to count what it holds. The store and feed contract suites share it.
 */
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll } from "vitest";
import { startRedis, startRedisCluster, type RedisClusterProcess, type RedisProcess } from "./redis-server";

export interface RedisFixture {
  /** how a RedisStore connects to it */
  connectOptions(): { url: string } | { clusterNodes: string[] };
  /** a client for assertions: Redis, or Cluster (owned by the fixture) */
  admin(): Redis | Cluster;
  /** empties every primary */
  flush(): Promise<void>;
  /** keys held, over every primary */
  size(): Promise<number>;
}

export function useRedis(kind: "single" | "cluster"): RedisFixture {
  let server: RedisProcess | undefined;
  let cluster: RedisClusterProcess | undefined;
  let admin: Redis | Cluster;
  const primaries = (): (Redis | Cluster)[] => (admin instanceof Cluster ? admin.nodes("master") : [admin]);
  beforeAll(async () => {
    if (kind === "single") {
      server = await startRedis();
      admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
      admin.on("error", () => {});
      return;
    }
    cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
    admin = new Cluster([cluster.urls[0]!], { redisOptions: { maxRetriesPerRequest: 1 } });
    admin.on("error", () => {});
    await new Promise((resolve) => admin.once("ready", resolve));
  }, 60_000);
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
    await cluster?.stop();
  });
  return {
    connectOptions: () => (server ? { url: server.url } : { clusterNodes: cluster!.urls }),
    admin: () => admin,
    flush: async () => {
      await Promise.all(primaries().map((n) => n.flushdb()));
    },
    size: async () => (await Promise.all(primaries().map((n) => n.dbsize()))).reduce((a, b) => a + b, 0),
  };
}
