/** The Redis connections beside the store's own: rate limits + presence, and the socket.io adapter's pair. */
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { COMMAND_TIMEOUT_MS } from "./store/redis";

export interface RedisClients {
  /** rate limits and presence */
  limits: Redis;
  /** the socket.io adapter's publisher and subscriber */
  adapter: [Redis, Redis];
  quit(): Promise<void>;
}

export function createRedisClients(url: string, log: Logger): RedisClients {
  const make = (name: string) => {
    const c = new Redis(url, {
      maxRetriesPerRequest: 1,
      retryStrategy: (n) => Math.min(n * 100, 1000),
      // Rate limits and presence must not hang on a hung Redis (the adapter's own requests time out).
      ...(name === "limits" ? { commandTimeout: COMMAND_TIMEOUT_MS } : {}),
    });
    c.on("error", (err: Error) => log.debug({ err: err.message, client: name }, "redis client error"));
    // The adapter fires PUBLISH / SUBSCRIBE without awaiting them (pitfall 2): in a Redis outage their
    // rejections (MaxRetriesPerRequestError) were unhandled and killed the process. Every command's
    // promise gets a handler here; a caller that awaits it still sees the error.
    const send = c.sendCommand.bind(c);
    c.sendCommand = ((...args: Parameters<Redis["sendCommand"]>) => {
      const reply = send(...args);
      if (reply instanceof Promise) reply.catch(() => undefined);
      return reply;
    }) as Redis["sendCommand"];
    return c;
  };
  const limits = make("limits");
  const adapter: [Redis, Redis] = [make("adapter-pub"), make("adapter-sub")];
  return {
    limits,
    adapter,
    quit: async () => {
      await Promise.all([limits, ...adapter].map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
