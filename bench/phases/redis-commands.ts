/**
 * 7. Redis commands per steady-state authenticated request: INFO commandstats
 * before/after an idle window (background: feed heartbeats, presence, adapter)
 * and before/after a GET /me load window of the same length on node 0; the
 * difference per request. The design promise is 0.
 */
import type { Redis } from "ioredis";
import { check, log, params, round1 } from "../lib/context";
import { httpLoad } from "../lib/http-load";
import { round, sleep } from "../lib/stats";

export type RedisCommandsResult = Awaited<ReturnType<typeof benchRedisCommands>>;

/** Total calls over every command, minus the INFO calls this measurement makes. */
async function totalCalls(redis: Redis): Promise<number> {
  const text = await redis.info("commandstats");
  let sum = 0;
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== "info") sum += Number(m[2]);
  return sum;
}

export async function benchRedisCommands(url: string, token: string, redis: Redis) {
  const p = params.redis;
  const headers = { authorization: `Bearer ${token}` };
  await httpLoad({ base: url, path: "/me", headers, concurrency: p.concurrency, durationMs: 300 }); // warm: the username is cached
  await sleep(300);
  log(`redis: idle window ${p.windowMs} ms, then GET /me load window ${p.windowMs} ms`);
  const i0 = await totalCalls(redis);
  await sleep(p.windowMs);
  const i1 = await totalCalls(redis);
  const r = await httpLoad({ base: url, path: "/me", headers, concurrency: p.concurrency, durationMs: p.windowMs });
  const l1 = await totalCalls(redis);
  const served = r.ok + r.late;
  const idleCommands = i1 - i0;
  const loadCommands = l1 - i1;
  const perRequest = Math.max(0, loadCommands - idleCommands) / served;
  check("redis: the /me load window answered only 200s", r.errors === 0 && r.ok > 0, `${r.ok} ok, ${r.errors} errors`);
  return {
    windowMs: p.windowMs,
    requests: served,
    reqPerSec: round1(r.ok / (r.elapsedMs / 1000)),
    commandsIdleWindow: idleCommands,
    commandsLoadWindow: loadCommands,
    commandsPerRequest: round(perRequest, 4),
  };
}
