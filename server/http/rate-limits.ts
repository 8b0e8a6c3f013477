/**
 * Rate limits (rate-limiter-flexible): in memory in embedded mode, in Redis in
 * cluster mode so limits hold across nodes (with an in-memory insurance limiter
 * so a Redis blip does not turn into refusing everyone).
 *
 * Redis keys (one key per call: RateLimiterRedis's script and MULTIs touch only that key, so they
 * run as they are on a Redis Cluster, an ioredis `Cluster` as storeClient, no extra option):
 *   <prefix><limiter>:<key>   string   points spent in the current window; TTL = the window
 *   limiters: login-user-ip, login-user-new, login-known (remembered username|address pairs, 30 d),
 *   login-ip, handshake-ip, refresh-ip, refresh-session, sessions-user; prefix "gh:rl:"
 */
import { isIP } from "node:net";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { Config, RateLimit } from "../config";
import type { RedisClient } from "../redis-clients";

export class RateLimitedError extends GatehouseError {
  override name = "RateLimitedError";
  constructor(readonly retryAfterSec: number) {
    super(ErrorCode.RATE_LIMITED);
  }
}

export interface RateLimits {
  /** wrong passwords per (username, client address): login and password change together */
  loginUser: RateLimiterAbstract | null;
  /** wrong passwords per username from addresses that have not logged into it lately, all together */
  loginUserNewAddress: RateLimiterAbstract | null;
  /** (username, address) pairs that logged in lately: spared by loginUserNewAddress */
  knownAddresses: KnownAddresses | null;
  loginIp: RateLimiterAbstract | null;
  handshakeIp: RateLimiterAbstract | null;
  refreshIp: RateLimiterAbstract | null;
  refreshSession: RateLimiterAbstract | null;
  /** GET /sessions and DELETE /sessions/:id per user */
  sessionsUser: RateLimiterAbstract | null;
}

/** How long a successful login makes its (username, address) pair "known" (30 days). */
export const KNOWN_ADDRESS_TTL_SEC = 30 * 86_400;

/**
 * Remembered (username, address) pairs, with expiry, in the limiter's own backend (memory or
 * Redis, cluster-wide): a limiter used as a set, so it needs no store of its own.
 */
export class KnownAddresses {
  constructor(private readonly memo: RateLimiterAbstract) {}
  async has(key: string): Promise<boolean> {
    // Unreadable counts as unknown: the stricter budget applies, nobody is let in.
    return (await this.memo.get(key).catch(() => null)) !== null;
  }
  async remember(key: string): Promise<void> {
    await this.memo.set(key, 1, KNOWN_ADDRESS_TTL_SEC).catch(() => undefined);
  }
}

export function createRateLimits(config: Config, redis: RedisClient | null, prefix = "gh:rl:"): RateLimits {
  const make = (name: string, rl: RateLimit): RateLimiterAbstract | null => {
    if (rl.points === 0) return null;
    const opts = { points: rl.points, duration: rl.durationSec, keyPrefix: `${prefix}${name}` };
    if (!redis) return new RateLimiterMemory(opts);
    return new RateLimiterRedis({ ...opts, storeClient: redis, useRedisPackage: false, insuranceLimiter: new RateLimiterMemory(opts) });
  };
  const loginUserNewAddress = make("login-user-new", config.rateLimitLoginUserNewAddress);
  return {
    loginUser: make("login-user-ip", config.rateLimitLoginUser),
    loginUserNewAddress,
    knownAddresses: loginUserNewAddress ? new KnownAddresses(make("login-known", { points: 1, durationSec: KNOWN_ADDRESS_TTL_SEC })!) : null,
    loginIp: make("login-ip", config.rateLimitLoginIp),
    handshakeIp: make("handshake-ip", config.rateLimitHandshakeIp),
    refreshIp: make("refresh-ip", config.rateLimitRefreshIp),
    refreshSession: make("refresh-session", config.rateLimitRefreshSession),
    sessionsUser: make("sessions-user", config.rateLimitSessionsUser),
  };
}

/**
 * The client address a limit keys on: IPv4 as is, IPv4-mapped IPv6 as its IPv4, other IPv6 by
 * its /64 (one host usually holds a whole /64, so a per-address key would let it rotate freely).
 */
export function addressKey(ip: string | undefined): string {
  if (!ip) return "unknown";
  const addr = ip.split("%")[0]!; // no zone id
  const family = isIP(addr);
  if (family === 4) return addr;
  if (family !== 6) return "unknown";
  const g = ipv6Groups(addr);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join(".");
  return `${g.slice(0, 4).map((x) => x.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted quad folded in). */
function ipv6Groups(addr: string): number[] {
  let text = addr.toLowerCase();
  const quad = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(2).map(Number) as [number, number, number, number];
    text = `${quad[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill("0");
  return [...h, ...zeros, ...t].map((x) => parseInt(x, 16));
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
 * A password check (login or password change) for `username` from `ip` under the failure
 * budgets. Points are spent before `attempt` runs, so a concurrent burst cannot all pass:
 * - per (username, address): cleared by a success, so only failures accumulate; wrong passwords
 *   from one address never lock the owner out at another;
 * - per username, only for addresses that have not logged into it within KNOWN_ADDRESS_TTL_SEC:
 *   a ceiling on guessing spread over many addresses that spares the owner's usual ones.
 *   A success gives its one point back (an attacker's count is not reset by the owner).
 */
export async function withFailureBudget<T>(limits: RateLimits, username: string, ip: string | undefined, attempt: () => Promise<T>): Promise<T> {
  const user = username.toLowerCase();
  const pair = `${user}|${addressKey(ip)}`;
  await consume(limits.loginUser, pair);
  const ceiling = limits.loginUserNewAddress && !(await limits.knownAddresses?.has(pair)) ? limits.loginUserNewAddress : null;
  try {
    await consume(ceiling, user);
  } catch (err) {
    // Refused before any password check: not a guess, so the pair's point is given back.
    await limits.loginUser?.reward(pair, 1).catch(() => undefined);
    throw err;
  }
  const result = await attempt();
  await Promise.all([limits.loginUser?.delete(pair), ceiling?.reward(user, 1), limits.knownAddresses?.remember(pair)].map((p) => p?.catch(() => undefined)));
  return result;
}
