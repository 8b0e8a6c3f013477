/** A local cluster: its own redis-server on a free port + N nodes sharing one generated JWT_SECRET. */
import { randomBytes } from "node:crypto";
import { startRedis, type RedisProcess } from "./redis-server";
import { startNodeProcess, type NodeProcess } from "./node-process";
import { freePort } from "./redis-server";

export interface LocalCluster {
  redis: RedisProcess;
  nodes: NodeProcess[];
  secret: string;
  admin: { username: string; password: string };
  /** the env every node got (add a node later with the same) */
  env: Record<string, string>;
  addNode(port?: number): Promise<NodeProcess>;
  stop(): Promise<void>;
}

export interface LocalClusterOptions {
  nodes: number;
  /** first node's port; the others follow it. Default: free ports. */
  basePort?: number;
  env?: Record<string, string>;
  admin?: { username: string; password: string };
  echo?: boolean;
}

export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const redis = await startRedis();
  const secret = randomBytes(32).toString("base64url");
  const admin = opts.admin ?? { username: "admin", password: randomBytes(9).toString("base64url") };
  const env: Record<string, string> = {
    REDIS_URL: redis.url,
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
    await redis.stop();
    throw err;
  }
  return {
    redis,
    nodes,
    secret,
    admin,
    env,
    addNode,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await redis.stop();
    },
  };
}
