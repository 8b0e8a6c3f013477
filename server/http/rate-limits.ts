/**
 * Rate limits (rate-limiter-flexible): in memory in embedded mode, in Redis in
 * cluster mode so limits hold across nodes (with an in-memory insurance limiter
 * so a Redis blip does not turn into refusing everyone).
 */
import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { Config, RateLimit } from "../config";

export class RateLimitedError extends GatehouseError {
  override name = "RateLimitedError";
  constructor(readonly retryAfterSec: number) {
    super(ErrorCode.RATE_LIMITED);
  }
}

export interface RateLimits {
  loginUser: RateLimiterAbstract | null;
  loginIp: RateLimiterAbstract | null;
  handshakeIp: RateLimiterAbstract | null;
  refreshSession: RateLimiterAbstract | null;
}

export function createRateLimits(config: Config, redis: Redis | null, prefix = "gh:rl:"): RateLimits {
  const make = (name: string, rl: RateLimit): RateLimiterAbstract | null => {
    if (rl.points === 0) return null;
    const opts = { points: rl.points, duration: rl.durationSec, keyPrefix: `${prefix}${name}` };
    if (!redis) return new RateLimiterMemory(opts);
    return new RateLimiterRedis({ ...opts, storeClient: redis, useRedisPackage: false, insuranceLimiter: new RateLimiterMemory(opts) });
  };
  return {
    loginUser: make("login-user", config.rateLimitLoginUser),
    loginIp: make("login-ip", config.rateLimitLoginIp),
    handshakeIp: make("handshake-ip", config.rateLimitHandshakeIp),
    refreshSession: make("refresh-session", config.rateLimitRefreshSession),
  };
}

/** Spends one point; over the limit throws RateLimitedError (429 with Retry-After). */
export async function consume(limiter: RateLimiterAbstract | null, key: string): Promise<void> {
  if (!limiter) return;
  try {
    await limiter.consume(key);
  } catch (res) {
    if (res instanceof RateLimiterRes) throw new RateLimitedError(Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
    throw new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE);
  }
}

/** Refuses (429) when the budget for `key` is spent, without spending anything. */
export async function requireBudget(limiter: RateLimiterAbstract | null, key: string): Promise<void> {
  if (!limiter) return;
  let res: RateLimiterRes | null;
  try {
    res = await limiter.get(key);
  } catch {
    throw new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE);
  }
  if (res && res.consumedPoints >= limiter.points) throw new RateLimitedError(Math.max(1, Math.ceil(res.msBeforeNext / 1000)));
}

/** Spends one point after the fact (never refuses: the work is done; the next call is refused). */
export async function spend(limiter: RateLimiterAbstract | null, key: string): Promise<void> {
  await limiter?.penalty(key, 1).catch(() => undefined);
}

/**
 * A password check under a failure budget: the point is spent before `attempt` runs, so a
 * concurrent burst cannot all pass, and cleared when it succeeds, so only failures accumulate.
 */
export async function withFailureBudget<T>(limiter: RateLimiterAbstract | null, key: string, attempt: () => Promise<T>): Promise<T> {
  await consume(limiter, key);
  const result = await attempt();
  await limiter?.delete(key).catch(() => undefined);
  return result;
}
