/**
 * Configuration: parsed once from the environment into a frozen, typed object.
 * Only main.ts passes process.env here; every other module receives a Config.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import express from "express";
import { z } from "zod";

export interface RateLimit {
  /** allowed events per window; 0 = limit switched off */
  points: number;
  /** window length in seconds */
  durationSec: number;
}

export interface Config {
  /** HTTP + socket.io port (default 3000) */
  port: number;
  /** bind address (default 127.0.0.1) */
  host: string;
  /** this node's name in logs, metrics and admin views (default `<hostname>:<port>`) */
  nodeId: string;
  /** one Redis primary; unset (and no redisClusterNodes) = embedded single-node mode on the in-memory store */
  redisUrl: string | undefined;
  /** seed URLs of a Redis Cluster (>= 7.0); never set together with redisUrl */
  redisClusterNodes: string[] | undefined;
  /** HS256 signing key bytes (random per process in embedded mode) */
  jwtSecret: Buffer;
  /** earlier signing keys (JWT_SECRET_PREVIOUS), accepted for verification only; empty by default */
  jwtSecretPrevious: Buffer[];
  /** true when JWT_SECRET was generated because none was given */
  jwtSecretGenerated: boolean;
  jwtIssuer: string;
  jwtAudience: string;
  /** access token lifetime, ms (default 15m) */
  accessTokenTtlMs: number;
  /** refresh token lifetime, ms (default 30d) */
  refreshTokenTtlMs: number;
  /** a rotated refresh token presented again within this (ms) gets the same live successor; 0 = off (default 10s) */
  refreshReuseGraceMs: number;
  /** if both set, the admin account is created or its password reset at start */
  adminUsername: string | undefined;
  adminPassword: string | undefined;
  /** how long an out-of-sync node keeps admitting on cached revocation state, ms (default 5s) */
  revocationMaxStalenessMs: number;
  logLevel: string;
  /** failed logins + wrong old passwords per username AND client address (default 10/15m) */
  rateLimitLoginUser: RateLimit;
  /** failed logins per username from addresses that have not logged into it in 30 days, all together (default 100/1h) */
  rateLimitLoginUserNewAddress: RateLimit;
  /** login + register + guest calls per client address (default 100/15m) */
  rateLimitLoginIp: RateLimit;
  /** socket.io handshakes per client address (default 600/1m) */
  rateLimitHandshakeIp: RateLimit;
  /** POST /auth/refresh calls per client address (default 300/1m) */
  rateLimitRefreshIp: RateLimit;
  /** refresh calls per session (default 30/1m) */
  rateLimitRefreshSession: RateLimit;
  /** GET /sessions + DELETE /sessions/:id per user (default 60/1m) */
  rateLimitSessionsUser: RateLimit;
  /** SESSIONS_PER_USER: 0 = unlimited (default); 1 = a new login revokes the user's other sessions (reason session_replaced) */
  sessionsPerUser: 0 | 1;
  /** origins allowed for HTTP and socket.io; empty = same origin only; ["*"] = any origin (tokens travel in headers, never cookies) */
  corsOrigins: string[];
  /** express `trust proxy` value; undefined = do not trust */
  trustProxy: string | number | boolean | undefined;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "900" (seconds), "15m", "500ms", "30d" -> milliseconds; NaN when malformed. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) return NaN;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? "s"]!);
}

/** "10/15m" -> {points: 10, durationSec: 900}; "0" -> off. */
export function parseRateLimit(text: string): RateLimit | undefined {
  if (text.trim() === "0") return { points: 0, durationSec: 1 };
  const m = /^\s*(\d+)\s*\/\s*(\d+)?\s*(s|m|h)\s*$/.exec(text);
  if (!m) return undefined;
  const durationSec = (Number(m[2] ?? 1) * UNIT_MS[m[3]!]!) / 1000;
  return { points: Number(m[1]), durationSec };
}

const duration = (name: string, def: string, min = 1) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (!Number.isFinite(ms) || ms < min) {
        ctx.addIssue({ code: "custom", message: `${name} must be a duration like 900, 15m, 30d (got "${v}")` });
        return z.NEVER;
      }
      return ms;
    });

const rateLimit = (name: string, def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const rl = parseRateLimit(v);
      if (!rl) {
        ctx.addIssue({ code: "custom", message: `${name} must be <count>/<window> like 10/15m, or 0 (got "${v}")` });
        return z.NEVER;
      }
      return rl;
    });

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default("127.0.0.1"),
  NODE_ID: z.string().min(1).max(128).optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must start with redis:// or rediss://")
    .optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((v, ctx) => {
      const urls = v.split(",").map((u) => u.trim()).filter(Boolean);
      const problem = clusterNodesProblem(urls);
      if (problem) {
        ctx.addIssue({ code: "custom", message: `REDIS_CLUSTER_NODES ${problem}` });
        return z.NEVER;
      }
      return urls;
    })
    .optional(),
  JWT_SECRET: z.string().min(32, "must be at least 32 bytes").optional(),
  JWT_SECRET_PREVIOUS: z
    .string()
    .transform((v, ctx) => {
      const keys = v.split(",").map((k) => k.trim());
      if (keys.some((k) => Buffer.byteLength(k, "utf8") < 32)) {
        ctx.addIssue({ code: "custom", message: "JWT_SECRET_PREVIOUS must be comma-separated keys of at least 32 bytes each" });
        return z.NEVER;
      }
      return keys.map((k) => Buffer.from(k, "utf8"));
    })
    .optional(),
  JWT_ISSUER: z.string().min(1).default("gatehouse"),
  JWT_AUDIENCE: z.string().min(1).default("gatehouse-game"),
  ACCESS_TOKEN_TTL: duration("ACCESS_TOKEN_TTL", "15m", 1000),
  REFRESH_TOKEN_TTL: duration("REFRESH_TOKEN_TTL", "30d", 1000),
  REFRESH_REUSE_GRACE: duration("REFRESH_REUSE_GRACE", "10s", 0),
  ADMIN_USERNAME: z.string().regex(/^[A-Za-z0-9_-]{3,32}$/, "must be 3-32 of [A-Za-z0-9_-]").optional(),
  ADMIN_PASSWORD: z.string().min(8, "must be at least 8 characters").max(128).optional(),
  REVOCATION_MAX_STALENESS: duration("REVOCATION_MAX_STALENESS", "5s", 0),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  RATE_LIMIT_LOGIN_USER: rateLimit("RATE_LIMIT_LOGIN_USER", "10/15m"),
  RATE_LIMIT_LOGIN_USER_NEW_ADDRESS: rateLimit("RATE_LIMIT_LOGIN_USER_NEW_ADDRESS", "100/1h"),
  RATE_LIMIT_LOGIN_IP: rateLimit("RATE_LIMIT_LOGIN_IP", "100/15m"),
  RATE_LIMIT_HANDSHAKE_IP: rateLimit("RATE_LIMIT_HANDSHAKE_IP", "600/1m"),
  RATE_LIMIT_REFRESH_IP: rateLimit("RATE_LIMIT_REFRESH_IP", "300/1m"),
  RATE_LIMIT_REFRESH_SESSION: rateLimit("RATE_LIMIT_REFRESH_SESSION", "30/1m"),
  RATE_LIMIT_SESSIONS_USER: rateLimit("RATE_LIMIT_SESSIONS_USER", "60/1m"),
  SESSIONS_PER_USER: z.enum(["0", "1"], "must be 0 (unlimited) or 1 (one session per user)").default("0"),
  CORS_ORIGINS: z.string().optional(),
  TRUST_PROXY: z.string().optional(),
});

/**
 * Why a list of Redis Cluster seed URLs is unusable, or null. The seeds only find the cluster:
 * every connection (to seeds and to the nodes they announce) uses the first one's credentials and
 * TLS, so seeds that disagree on them are refused rather than half-honoured.
 */
function clusterNodesProblem(urls: string[]): string | null {
  if (urls.length === 0) return "must list at least one redis:// or rediss:// URL";
  const parsed: URL[] = [];
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      return `must be comma-separated redis:// or rediss:// URLs (one is not a URL)`;
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") return `must be comma-separated redis:// or rediss:// URLs (got ${url.protocol}//)`;
    if (!url.hostname) return "must name a host in every URL";
    if (url.pathname !== "" && url.pathname !== "/" && url.pathname !== "/0") return "URLs must not select a database (a Redis Cluster has only database 0)";
    parsed.push(url);
  }
  const [first] = parsed;
  if (parsed.some((u) => u.protocol !== first!.protocol || u.username !== first!.username || u.password !== first!.password)) {
    return "URLs must all use the same scheme and credentials";
  }
  return null;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Parses the environment; throws ConfigError with one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings count as unset, as most shells and compose files intend.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? "environment");
    const msg = issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
    throw new ConfigError(`invalid configuration: ${msg}`);
  }
  const e = parsed.data;
  if (e.REDIS_URL && e.REDIS_CLUSTER_NODES) {
    throw new ConfigError("invalid configuration: set REDIS_URL (one Redis primary) or REDIS_CLUSTER_NODES (a Redis Cluster), not both");
  }
  if (e.REDIS_URL && !e.JWT_SECRET) {
    throw new ConfigError("invalid configuration: JWT_SECRET is required (>= 32 bytes) when REDIS_URL is set");
  }
  if (e.REDIS_CLUSTER_NODES && !e.JWT_SECRET) {
    throw new ConfigError("invalid configuration: JWT_SECRET is required (>= 32 bytes) when REDIS_CLUSTER_NODES is set");
  }
  if (e.JWT_SECRET_PREVIOUS && !e.JWT_SECRET) {
    throw new ConfigError("invalid configuration: JWT_SECRET_PREVIOUS needs JWT_SECRET (the key that signs now)");
  }
  if (Boolean(e.ADMIN_USERNAME) !== Boolean(e.ADMIN_PASSWORD)) {
    throw new ConfigError("invalid configuration: ADMIN_USERNAME and ADMIN_PASSWORD must be set together");
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    nodeId: e.NODE_ID ?? `${hostname()}:${e.PORT}`,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    jwtSecret: e.JWT_SECRET ? Buffer.from(e.JWT_SECRET, "utf8") : randomBytes(32),
    jwtSecretPrevious: e.JWT_SECRET_PREVIOUS ?? [],
    jwtSecretGenerated: !e.JWT_SECRET,
    jwtIssuer: e.JWT_ISSUER,
    jwtAudience: e.JWT_AUDIENCE,
    accessTokenTtlMs: e.ACCESS_TOKEN_TTL,
    refreshTokenTtlMs: e.REFRESH_TOKEN_TTL,
    refreshReuseGraceMs: e.REFRESH_REUSE_GRACE,
    adminUsername: e.ADMIN_USERNAME,
    adminPassword: e.ADMIN_PASSWORD,
    revocationMaxStalenessMs: e.REVOCATION_MAX_STALENESS,
    logLevel: e.LOG_LEVEL,
    rateLimitLoginUser: e.RATE_LIMIT_LOGIN_USER,
    rateLimitLoginUserNewAddress: e.RATE_LIMIT_LOGIN_USER_NEW_ADDRESS,
    rateLimitLoginIp: e.RATE_LIMIT_LOGIN_IP,
    rateLimitHandshakeIp: e.RATE_LIMIT_HANDSHAKE_IP,
    rateLimitRefreshIp: e.RATE_LIMIT_REFRESH_IP,
    rateLimitRefreshSession: e.RATE_LIMIT_REFRESH_SESSION,
    rateLimitSessionsUser: e.RATE_LIMIT_SESSIONS_USER,
    sessionsPerUser: e.SESSIONS_PER_USER === "1" ? 1 : 0,
    corsOrigins: parseCorsOrigins(e.CORS_ORIGINS),
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
  });
}

function parseCorsOrigins(v: string | undefined): string[] {
  const origins = v ? v.split(",").map((s) => s.trim()).filter(Boolean) : [];
  if (origins.includes("*") && origins.length > 1) {
    throw new ConfigError("invalid configuration: CORS_ORIGINS: * allows every origin and must be given alone (or list the origins without it)");
  }
  return origins;
}

function parseTrustProxy(v: string | undefined): string | number | boolean | undefined {
  if (v === undefined) return undefined;
  if (v === "true") return true;
  if (v === "false") return false;
  if (/^\d+$/.test(v)) return Number(v);
  // Addresses, CIDRs or loopback/linklocal/uniquelocal: let express compile it now, so a typo
  // fails here with the variable's name rather than later inside the app.
  try {
    express().set("trust proxy", v);
  } catch (err) {
    throw new ConfigError(`invalid configuration: TRUST_PROXY: ${(err as Error).message} (use true, a hop count, or comma-separated addresses, CIDRs, loopback, linklocal, uniquelocal)`);
  }
  return v;
}

// ---- the same settings as options, for createGatehouse ----

/** A duration: "15m", "900" (seconds), "500ms", or a number of milliseconds. */
export type DurationOption = string | number;
/** A rate limit: "10/15m", "0" (off), or {points, durationSec}. */
export type RateLimitOption = string | RateLimit;

/**
 * createGatehouse's options: every environment setting of the server under a camelCase name
 * (README's table has the defaults), minus PORT and HOST (the host application listens).
 */
export interface GatehouseOptions {
  /** JWT_SECRET: HS256 key, >= 32 bytes; required with redisUrl (random per process otherwise) */
  jwtSecret?: string;
  /** JWT_SECRET_PREVIOUS: earlier keys still accepted for verification */
  jwtSecretPrevious?: string[];
  /** REDIS_URL: one Redis primary (state, feed and limits in Redis); unset (and no redisClusterNodes) = in-memory, single node */
  redisUrl?: string;
  /** REDIS_CLUSTER_NODES: seed URLs of a Redis Cluster (>= 7.0) instead of redisUrl; credentials and TLS from the URLs */
  redisClusterNodes?: string[];
  /** NODE_ID: this node's name in logs, metrics and admin views (default `<hostname>:<pid>`) */
  nodeId?: string;
  /** JWT_ISSUER (default "gatehouse") */
  jwtIssuer?: string;
  /** JWT_AUDIENCE (default "gatehouse-game") */
  jwtAudience?: string;
  /** ACCESS_TOKEN_TTL (default 15m) */
  accessTokenTtl?: DurationOption;
  /** REFRESH_TOKEN_TTL (default 30d) */
  refreshTokenTtl?: DurationOption;
  /** REFRESH_REUSE_GRACE (default 10s) */
  refreshReuseGrace?: DurationOption;
  /** REVOCATION_MAX_STALENESS (default 5s) */
  revocationMaxStaleness?: DurationOption;
  /** ADMIN_USERNAME + ADMIN_PASSWORD: the admin account, created (or its password reset) at start */
  adminUsername?: string;
  adminPassword?: string;
  /** LOG_LEVEL (default "info"); ignored when a logger is passed */
  logLevel?: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  rateLimitLoginUser?: RateLimitOption;
  rateLimitLoginUserNewAddress?: RateLimitOption;
  rateLimitLoginIp?: RateLimitOption;
  rateLimitHandshakeIp?: RateLimitOption;
  rateLimitRefreshIp?: RateLimitOption;
  rateLimitRefreshSession?: RateLimitOption;
  rateLimitSessionsUser?: RateLimitOption;
  /** SESSIONS_PER_USER: 0 = unlimited (default), 1 = a new login replaces the user's other sessions */
  sessionsPerUser?: 0 | 1;
  /** CORS_ORIGINS for the routers' answers and the socket.io handshake ("*" = any origin) */
  corsOrigins?: string[] | "*";
  /** TRUST_PROXY: express `trust proxy`, also used for the handshake's client address */
  trustProxy?: string | number | boolean;
}

/** Each option's environment variable: the env schema above validates both. */
const OPTION_ENV: Record<keyof GatehouseOptions, string> = {
  jwtSecret: "JWT_SECRET",
  jwtSecretPrevious: "JWT_SECRET_PREVIOUS",
  redisUrl: "REDIS_URL",
  redisClusterNodes: "REDIS_CLUSTER_NODES",
  nodeId: "NODE_ID",
  jwtIssuer: "JWT_ISSUER",
  jwtAudience: "JWT_AUDIENCE",
  accessTokenTtl: "ACCESS_TOKEN_TTL",
  refreshTokenTtl: "REFRESH_TOKEN_TTL",
  refreshReuseGrace: "REFRESH_REUSE_GRACE",
  revocationMaxStaleness: "REVOCATION_MAX_STALENESS",
  adminUsername: "ADMIN_USERNAME",
  adminPassword: "ADMIN_PASSWORD",
  logLevel: "LOG_LEVEL",
  rateLimitLoginUser: "RATE_LIMIT_LOGIN_USER",
  rateLimitLoginUserNewAddress: "RATE_LIMIT_LOGIN_USER_NEW_ADDRESS",
  rateLimitLoginIp: "RATE_LIMIT_LOGIN_IP",
  rateLimitHandshakeIp: "RATE_LIMIT_HANDSHAKE_IP",
  rateLimitRefreshIp: "RATE_LIMIT_REFRESH_IP",
  rateLimitRefreshSession: "RATE_LIMIT_REFRESH_SESSION",
  rateLimitSessionsUser: "RATE_LIMIT_SESSIONS_USER",
  sessionsPerUser: "SESSIONS_PER_USER",
  corsOrigins: "CORS_ORIGINS",
  trustProxy: "TRUST_PROXY",
};

/** An option's value as its environment text (the schema parses and validates it once, for both). */
function optionText(key: keyof GatehouseOptions, v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return /Ttl$|Grace$|Staleness$/.test(key) ? `${v}ms` : String(v);
  if (typeof v === "boolean" && key === "trustProxy") return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join(",");
  if (key.startsWith("rateLimit") && typeof v === "object" && v !== null) {
    const { points, durationSec } = v as Partial<RateLimit>;
    if (Number.isInteger(points) && Number.isInteger(durationSec) && durationSec! > 0) return points === 0 ? "0" : `${points}/${durationSec}s`;
  }
  throw new ConfigError(`invalid option: ${key} has the wrong type (got ${JSON.stringify(v)})`);
}

/**
 * createGatehouse's options -> a Config, through the same schema as the environment. Throws
 * ConfigError with one line naming the option (not its environment variable).
 */
export function configFromOptions(options: GatehouseOptions): Config {
  const env: Record<string, string> = { PORT: "0" };
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!(key in OPTION_ENV)) throw new ConfigError(`invalid option: ${key} is not a Gatehouse option`);
    const name = key as keyof GatehouseOptions;
    env[OPTION_ENV[name]] = optionText(name, value);
  }
  // PORT is the host application's: the default node id names the process instead.
  env.NODE_ID ??= `${hostname()}:${process.pid}`;
  try {
    return loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Longest names first, so JWT_SECRET does not rewrite the start of JWT_SECRET_PREVIOUS.
    const pairs = Object.entries(OPTION_ENV).sort((a, b) => b[1].length - a[1].length);
    let msg = err.message.replace(/^invalid configuration:/, "invalid option:");
    for (const [option, envName] of pairs) msg = msg.replace(new RegExp(`\\b${envName}\\b`, "g"), option);
    throw new ConfigError(msg);
  }
}
