/**
 * The Redis connections beside the store's own, for one Redis primary (`REDIS_URL`) or a Redis
 * Cluster (`REDIS_CLUSTER_NODES`, ioredis `Cluster`): rate limits + presence + the matchmaking
 * queue, the socket.io adapter's pair, and the room bus's pair. One factory, so every use gets the
 * same credentials, TLS, fail-fast and reconnect-forever settings and a connection name.
 *
 * Connections (CLIENT LIST names; on a cluster one per primary, sharded subscribers one per shard):
 *   gatehouse-limits     rate limits, presence, the tic-tac-toe queue (commands time out after COMMAND_TIMEOUT_MS)
 *   gatehouse-io-pub     the socket.io adapter's publisher, and the room bus's
 *   gatehouse-io-sub     the socket.io adapter's subscriber (SSUBSCRIBE on a cluster), and the room bus's
 * The room bus shares the adapter's pair so that a room's share and its broadcasts (player:left)
 * reach another node in the order they were sent (same connections; on a cluster the same shard,
 * by hash tag: server/rooms/bus.ts). Both adapters ignore channels that are not theirs.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import type { Logger } from "pino";
import type { Config } from "./config";
import { COMMAND_TIMEOUT_MS } from "./store/redis";

/** What `io.adapter()` takes: the classic or the sharded Redis adapter. */
export type IoAdapter = ReturnType<typeof createAdapter> | ReturnType<typeof createShardedAdapter>;

/** Where Redis is: one primary, or the seeds of a Redis Cluster. */
export type RedisTarget = { url: string } | { clusterNodes: string[] };

/** A connection to either topology (the commands Gatehouse uses exist on both). */
export type RedisClient = Redis | Cluster;

/** The configured Redis, or null in embedded mode. */
export function redisTargetOf(config: Pick<Config, "redisUrl" | "redisClusterNodes">): RedisTarget | null {
  if (config.redisClusterNodes) return { clusterNodes: config.redisClusterNodes };
  if (config.redisUrl) return { url: config.redisUrl };
  return null;
}

export interface RedisClients {
  /** true on a Redis Cluster */
  readonly cluster: boolean;
  /** rate limits, presence and the matchmaking queue */
  readonly limits: RedisClient;
  /** the socket.io adapter's publisher and subscriber */
  readonly adapter: [RedisClient, RedisClient];
  /**
   * Resolves once the command connections are ready; rejects after `timeoutMs` (default 10 s).
   * On a cluster their commands fail at once while it is not ready (no offline queue), so the
   * composition root awaits this before serving.
   */
  ready(timeoutMs?: number): Promise<void>;
  /** `io.adapter(...)`'s argument for this topology (see ioAdapter below) */
  ioAdapter(): IoAdapter;
  quit(): Promise<void>;
}

/** Reconnect quickly and forever: presence and the adapter must come back as soon as Redis does. */
const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000);

/** ioredis options from a seed URL: credentials, TLS for rediss://. */
function urlOptions(url: string): RedisOptions {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** The seeds' host and port (config.ts checked they share scheme and credentials). */
function seeds(urls: string[]): { host: string; port: number }[] {
  return urls.map((url) => {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 6379) };
  });
}

interface ClientRole {
  name: string;
  /** commands fail after COMMAND_TIMEOUT_MS instead of waiting on a hung Redis */
  timeout?: boolean;
  /** subscribes: keep commands issued while disconnected (re-sent once connected) */
  subscriber?: boolean;
  /** on a cluster: SSUBSCRIBE through one connection per shard (ioredis >= 5.9, pitfall 18) */
  sharded?: boolean;
}

/**
 * Opens one connection (or Cluster client) to `target`. Every command's promise gets a rejection
 * handler: the adapter fires PUBLISH / SUBSCRIBE without awaiting them (pitfall 2), and in a Redis
 * outage their rejections were unhandled and killed the process. A caller that awaits still sees
 * the error.
 */
export function createRedisClient(target: RedisTarget, role: ClientRole, log: Logger): RedisClient {
  const connectionName = `gatehouse-${role.name}`;
  const nodeOptions: RedisOptions = {
    connectionName,
    // Fail fast: a command waits for at most one reconnect, never for the whole outage.
    maxRetriesPerRequest: 1,
    ...(role.timeout ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
  };
  let client: RedisClient;
  if ("url" in target) {
    client = new Redis(target.url, { ...nodeOptions, retryStrategy });
  } else {
    const first = target.clusterNodes[0]!;
    const options: ClusterOptions = {
      redisOptions: { ...nodeOptions, ...urlOptions(first) },
      clusterRetryStrategy: retryStrategy,
      // Fail fast: once it was ready (see ready()), commands on a cluster that is not fail at once
      // (the limiters fall back to memory, presence is rewritten on 'ready'), rather than wait in a
      // queue for the whole outage. A subscriber's SSUBSCRIBEs are kept until it is ready again.
      enableOfflineQueue: role.subscriber === true,
      // Batches the per-key commands presence sends to each primary.
      enableAutoPipelining: !role.subscriber,
      ...(role.sharded ? { shardedSubscribers: true } : {}),
    };
    client = new Cluster(seeds(target.clusterNodes), options);
  }
  client.on("error", (err: Error) => log.debug({ err: err.message, client: role.name }, "redis client error"));
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<Redis["sendCommand"]>) => {
    const reply = send(...args);
    if (reply instanceof Promise) reply.catch(() => undefined);
    return reply;
  }) as Redis["sendCommand"];
  return client;
}

export function createRedisClients(target: RedisTarget, log: Logger): RedisClients {
  const cluster = "clusterNodes" in target;
  const limits = createRedisClient(target, { name: "limits", timeout: true }, log);
  const pub = createRedisClient(target, { name: "io-pub" }, log);
  const sub = createRedisClient(target, { name: "io-sub", subscriber: true, sharded: true }, log);
  const all = [limits, pub, sub];
  return {
    cluster,
    limits,
    adapter: [pub, sub],
    ready: (timeoutMs = 10_000) => Promise.all([limits, pub].map((c) => whenReady(c, timeoutMs))).then(() => undefined),
    ioAdapter: () => ioAdapter(cluster, pub, sub),
    quit: async () => {
      await Promise.all(all.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}

function whenReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new Error(`Redis was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", onReady);
  });
}

/**
 * The socket.io adapter.
 *
 * Cluster: the sharded adapter (SSUBSCRIBE / SPUBLISH; classic PUBLISH on a cluster is sent to
 * every node of it). Installed @socket.io/redis-adapter 8.3.0 with ioredis 5.11.1: the subscriber
 * is a `Cluster` with `shardedSubscribers: true` (ioredis#1759). `subscriptionMode: "dynamic"`
 * (the default): a public room gets its own channel, which only the nodes holding a socket in it
 * subscribe to, so chat, joins and leaves of a room reach those nodes only; emits to one socket
 * and server-side emits use the namespace channel. 8.3.0 has the fixes for private-room emits in
 * dynamic mode (#524) and the smessageBuffer listener leak (#528); #561 (a private-room emit
 * published on the namespace channel) is how dynamic mode is meant to work, not a loss. Not
 * "dynamic-private": one SSUBSCRIBE per socket costs Redis a subscription per connection and
 * buys nothing here (no remote emits to single sockets).
 *
 * One primary: the classic adapter (PUBLISH / PSUBSCRIBE), kept because REDIS_URL may be a
 * Redis 6.2, which has no sharded pub/sub; the per-tick room traffic (the part that grows with
 * rooms x nodes) travels on the room bus in both topologies (server/rooms/bus.ts).
 */
function ioAdapter(cluster: boolean, pub: RedisClient, sub: RedisClient): IoAdapter {
  if (cluster) return createShardedAdapter(pub, sub, { channelPrefix: "gh:io", subscriptionMode: "dynamic" });
  return createAdapter(pub, sub, { key: "gh:io", publishOnSpecificResponseChannel: true });
}
