/**
 * A local cluster: its own Redis (one redis-server on a free port, or with `redisCluster` a Redis
 * Cluster of 3 primaries + 3 replicas, in sync before any node starts) + N nodes sharing one
 * generated JWT_SECRET. `npm run cluster` and the cluster tests both start it here.
 */
import { randomBytes } from "node:crypto";
import { startRedis, type RedisProcess } from "./redis-server";
import { startRedisCluster, type RedisClusterProcess } from "./redis-cluster";
import { startNodeProcess, type NodeProcess } from "./node-process";
import { freePort } from "./redis-server";

interface LocalClusterBase {
  nodes: NodeProcess[];
  secret: string;
  admin: { username: string; password: string };
  /** the env every node got (add a node later with the same) */
  env: Record<string, string>;
  addNode(port?: number): Promise<NodeProcess>;
  stop(): Promise<void>;
}

/** Nodes on one Redis primary (REDIS_URL). */
export interface LocalCluster extends LocalClusterBase {
  topology: "single";
  redis: RedisProcess;
}

/** Nodes on a Redis Cluster (REDIS_CLUSTER_NODES). */
export interface LocalClusterOnRedisCluster extends LocalClusterBase {
  topology: "redis-cluster";
  redisCluster: RedisClusterProcess;
}

export type AnyLocalCluster = LocalCluster | LocalClusterOnRedisCluster;

export interface LocalClusterOptions {
  nodes: number;
  /** first node's port; the others follow it. Default: free ports. */
  basePort?: number;
  env?: Record<string, string>;
  admin?: { username: string; password: string };
  echo?: boolean;
  /** on a local Redis Cluster (3 primaries + 3 replicas) instead of one redis-server */
  redisCluster?: boolean;
}

export function startLocalCluster(opts: LocalClusterOptions & { redisCluster?: false }): Promise<LocalCluster>;
export function startLocalCluster(opts: LocalClusterOptions & { redisCluster: true }): Promise<LocalClusterOnRedisCluster>;
export function startLocalCluster(opts: LocalClusterOptions): Promise<AnyLocalCluster>;
export async function startLocalCluster(opts: LocalClusterOptions): Promise<AnyLocalCluster> {
  // Every replica in sync before a node starts (startRedisCluster waits): revocations WAIT for one.
  type Backend = Pick<LocalCluster, "topology" | "redis"> | Pick<LocalClusterOnRedisCluster, "topology" | "redisCluster">;
  const backend: Backend = opts.redisCluster
    ? { topology: "redis-cluster", redisCluster: await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 }) }
    : { topology: "single", redis: await startRedis() };
  const stopRedis = () => (backend.topology === "single" ? backend.redis.stop() : backend.redisCluster.stop());
  const secret = randomBytes(32).toString("base64url");
  const admin = opts.admin ?? { username: "admin", password: randomBytes(9).toString("base64url") };
  const env: Record<string, string> = {
    ...(backend.topology === "single" ? { REDIS_URL: backend.redis.url } : { REDIS_CLUSTER_NODES: backend.redisCluster.nodesEnv }),
    JWT_SECRET: secret,
    ADMIN_USERNAME: admin.username,
    ADMIN_PASSWORD: admin.password,
    LOG_LEVEL: "info",
    ...opts.env,
  };
  const nodes: NodeProcess[] = [];
  const addNode = async (port?: number) => {
    const fixed = port ?? (opts.basePort ? opts.basePort + nodes.length : undefined);
    // A free port we picked can be taken before the node binds it (e.g. as the local port of an
    // outgoing connection): pick another, as startRedis does. A port the caller chose is not retried.
    for (let attempt = 0; ; attempt++) {
      try {
        const n = await startNodeProcess({ port: fixed ?? (await freePort()), env, echo: opts.echo ?? false });
        nodes.push(n);
        return n;
      } catch (err) {
        if (fixed !== undefined || attempt >= 3 || !String(err).includes("EADDRINUSE")) throw err;
      }
    }
  };
  try {
    // Sequential: the first node creates the admin account; the rest find it.
    for (let i = 0; i < opts.nodes; i++) await addNode();
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    await stopRedis();
    throw err;
  }
  return {
    ...backend,
    nodes,
    secret,
    admin,
    env,
    addNode,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await stopRedis();
    },
  };
}
