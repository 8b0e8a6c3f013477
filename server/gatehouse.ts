/**
 * Gatehouse as parts an express + socket.io application plugs in: the routers, the Bearer
 * middleware, the socket.io handshake check with forced disconnects for a given `io`, the
 * revocation API, and close(). `createApp` (the standalone server) is one user of it.
 *
 *   const gatehouse = await createGatehouse({ jwtSecret, redisUrl }); // or redisClusterNodes: [...]
 *   app.use("/auth", gatehouse.routers.auth);
 *   gatehouse.attach(io);
 */
import express, { Router, type RequestHandler } from "express";
import type { Server as IoServer } from "socket.io";
import type { Logger } from "pino";
import { ErrorCode, GatehouseError } from "../shared/errors";
import { MAX_JSON_BODY_BYTES, type AuditEntry } from "../shared/protocol";
import { ensureAdminAccount } from "./admin-account";
import { Accounts } from "./auth/accounts";
import { createTokenCheck, withReadThrough, type LiveTokenCheck } from "./auth/check";
import { UserDirectory } from "./auth/user-directory";
import { CLOCK_TOLERANCE_SEC, TokenService, newId } from "./auth/tokens";
import { systemClock, type Clock } from "./clock";
import { configFromOptions, type Config, type GatehouseOptions } from "./config";
import { requireAuth } from "./http/auth-middleware";
import { errorHandler, sendError } from "./http/errors";
import { adminActionLog } from "./http/middleware/admin-action-log";
import { cors, socketCors } from "./http/middleware/cors";
import { httpMetrics } from "./http/middleware/http-metrics";
import { lockoutLog } from "./http/middleware/lockout-log";
import { refuseQueryTokens } from "./http/middleware/refuse-query-tokens";
import { createRateLimits, type RateLimits } from "./http/rate-limits";
import { adminRoutes } from "./http/routes-admin";
import { authRoutes } from "./http/routes-auth";
import { opsRoutes } from "./http/routes-ops";
import { sessionRoutes } from "./http/routes-sessions";
import { createLogger } from "./logger";
import { createMetrics, type Metrics } from "./metrics";
import { AdminWatch } from "./realtime/admin-watch";
import { Gateway } from "./realtime/gateway";
import { MemoryPresence, RedisPresence, type Presence } from "./realtime/presence";
import { createRedisClients, redisTargetOf, type RedisClients, type RedisTarget } from "./redis-clients";
import { RevocationCache } from "./revocation/cache";
import { Revocations } from "./revocation/revocations";
import type { RevocationFeed } from "./store/feed";
import { MemoryStore } from "./store/memory";
import { MemoryFeed } from "./store/memory-feed";
import { RedisStore } from "./store/redis";
import { RedisFeed } from "./store/redis-feed";
import type { RevocationChange, Store } from "./store/store";

export interface GatehouseDeps {
  clock?: Clock;
  /** default: a pino logger at the configured level, JSON on stdout */
  logger?: Logger;
  /** extra reasons /readyz answers 503 for (the standalone server's shutdown) */
  notReadyReason?(): string | null;
}

/** What an admin call may add: a reason shown to the dropped players, and who acted (audit trail). */
export interface RevocationNote {
  reason?: string;
  /** the audit trail's actor name (default "api") */
  by?: string;
}

export interface Gatehouse {
  readonly config: Config;
  readonly log: Logger;
  /**
   * Mount as `app.use("/auth", auth)`, `app.use("/admin", admin)`, `app.use(sessions)`,
   * `app.use(ops)`. Each refuses tokens in query strings and answers its errors in the contract's
   * shape, on its own paths only; auth and admin parse their own JSON bodies (no route of sessions
   * or ops takes one).
   */
  readonly routers: { auth: Router; sessions: Router; admin: Router; ops: Router };
  /** Bearer check for your own routes: 401 (RFC 6750) or `req.claims` set to the verified claims. */
  readonly requireAuth: RequestHandler;
  /** Counts requests for /metrics by route pattern (optional; the standalone server uses it). */
  readonly httpMetrics: RequestHandler;
  /** CORS from the corsOrigins option, for the routers (optional). */
  readonly cors: RequestHandler;
  /** socket.io's `cors` option from corsOrigins (undefined: same origin only). */
  readonly socketCors: ReturnType<typeof socketCors>;
  /**
   * Checks every handshake on `io` (coded connect_error on refusal), keeps `socket.data.claims`
   * current (`auth:refresh`, expiry), and drops the sockets a revocation covers, with
   * `session:revoked` first. Also answers `admin:watch` (the dashboard's pushed online list,
   * docs/api.md). Call once per io, before its clients connect.
   */
  attach(io: IoServer): Gateway;
  /** Each resolves once the revocation is durable and every node confirmed it (or timed out), like the HTTP routes. */
  kick(userId: string, note?: RevocationNote): Promise<{ seq: number }>;
  ban(userId: string, opts?: RevocationNote & { until?: Date | string | number | null }): Promise<{ seq: number }>;
  unban(userId: string, opts?: Pick<RevocationNote, "by">): Promise<{ seq: number }>;
  revokeSession(sessionId: string, note?: RevocationNote): Promise<{ seq: number }>;
  revokeAll(opts?: Pick<RevocationNote, "by">): Promise<{ seq: number }>;
  /** Stops timers, the feed and the store connections; the host closes its own io and http server. */
  close(): Promise<void>;

  // ---- the parts, for the standalone server and tests ----
  readonly clock: Clock;
  readonly store: Store;
  readonly feed: RevocationFeed;
  readonly cache: RevocationCache;
  readonly revocations: Revocations;
  readonly check: LiveTokenCheck;
  readonly tokens: TokenService;
  readonly metrics: Metrics;
  readonly presence: Presence;
  readonly limits: RateLimits;
  readonly users: UserDirectory;
  /** the Redis connections beside the store's (null in memory mode); the adapter's pair is for io.adapter */
  readonly redis: RedisClients | null;
}

/** Validates the options (one ConfigError naming the option), connects the store and loads the revocation state. */
export function createGatehouse(options: GatehouseOptions, deps: GatehouseDeps = {}): Promise<Gatehouse> {
  return buildGatehouse(configFromOptions(options), deps, "pass adminUsername and adminPassword to createGatehouse");
}

/**
 * The store and its revocation feed: on Redis (one primary or a Redis Cluster: the same store, only
 * its ioredis client differs), the feed riding on the store's connections; in memory, a feed the
 * store publishes into.
 */
async function storeAndFeed(target: RedisTarget | null, logger: Logger): Promise<{ store: Store; feed: RevocationFeed }> {
  if (!target) {
    const feed = new MemoryFeed();
    return { store: new MemoryStore({ feed }), feed };
  }
  const store = await ("url" in target ? RedisStore.connect({ url: target.url, logger }) : RedisStore.connect({ clusterNodes: target.clusterNodes, logger }));
  return { store, feed: RedisFeed.for(store) };
}

/** From an already parsed Config (the standalone server's path). */
export async function buildGatehouse(config: Config, deps: GatehouseDeps = {}, adminHint?: string): Promise<Gatehouse> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? createLogger({ level: config.logLevel, nodeId: config.nodeId });
  const metrics = createMetrics(config.nodeId);

  // ---- backends, chosen once ----
  const target = redisTargetOf(config);
  const { store, feed } = await storeAndFeed(target, log);
  const redis = target ? createRedisClients(target, log) : null;
  if (redis) {
    try {
      await redis.ready();
    } catch (err) {
      await redis.quit();
      await feed.close();
      await store.close();
      throw err;
    }
  }
  const presence: Presence = redis ? new RedisPresence(redis.limits, config.nodeId, log) : new MemoryPresence();

  // ---- revocation state and the one check ----
  const cache = new RevocationCache();
  const revocations = new Revocations(store, feed, cache, clock, log, {
    nodeId: config.nodeId,
    // Marks must outlive every token they cover, including the exp clock tolerance.
    markTtlMs: config.accessTokenTtlMs + (CLOCK_TOLERANCE_SEC + 1) * 1000,
    maxStalenessMs: config.revocationMaxStalenessMs,
    onFeedRejected: () => metrics.feedRejected.inc(),
    onUnconfirmed: (e, missing) => metrics.revocationsUnconfirmed.inc({ reason: e.reason }, missing),
  });
  revocations.onApplied((e, source) => metrics.revocations.inc({ reason: e.reason, source }));
  const tokens = new TokenService(
    config.jwtSecret,
    { issuer: config.jwtIssuer, audience: config.jwtAudience, accessTtlMs: config.accessTokenTtlMs, previousSecrets: config.jwtSecretPrevious },
    clock,
  );
  const check = withReadThrough(createTokenCheck({ tokens, cache, clock, revocationAvailable: () => revocations.available() }), {
    inSync: () => revocations.inSync,
    readMarksFor: (claims) => revocations.readMarksFor(claims),
  });
  const limits = createRateLimits(config, redis?.limits ?? null);
  const users = new UserDirectory(store);
  const accounts = new Accounts({
    store,
    tokens,
    revocations,
    clock,
    refreshTtlMs: config.refreshTokenTtlMs,
    refreshReuseGraceMs: config.refreshReuseGraceMs,
    sessionsPerUser: config.sessionsPerUser,
  });

  const ensureAdmin = await ensureAdminAccount(accounts, log, { username: config.adminUsername, password: config.adminPassword }, adminHint);
  if (ensureAdmin) {
    // A Redis without persistence restarted: the admin account went with it.
    revocations.onStoreReset(() =>
      ensureAdmin().catch((err: unknown) => {
        // Once per store loss (never retried in a loop): the operator must act, e.g. rename ADMIN_USERNAME.
        log.error({ err: (err as Error).message }, "admin account not re-created after the store lost its data");
      }),
    );
  }

  // ---- sockets: one gateway per attached io ----
  const gateways: Gateway[] = [];
  /** the admin dashboard's pushed online list, on each attached io */
  const adminWatches: AdminWatch[] = [];
  // The handshake's client address by express's own req.ip logic (same TRUST_PROXY as HTTP).
  const ipApp = express();
  if (config.trustProxy !== undefined) ipApp.set("trust proxy", config.trustProxy);
  const attach = (io: IoServer): Gateway => {
    const gateway = new Gateway({
      io,
      check,
      cache,
      clock,
      log,
      metrics,
      presence,
      nodeId: config.nodeId,
      handshakeLimiter: limits.handshakeIp,
      clientIp: (raw) => (Object.create(ipApp.request, { app: { value: ipApp }, headers: { value: raw.headers }, socket: { value: raw.socket } }) as express.Request).ip,
      usernameOf: (userId) => users.cachedUsername(userId) ?? users.usernameOf(userId),
    });
    revocations.onApplied((e) => gateway.enforce(e));
    revocations.onResynced(() => gateway.sweep());
    gateways.push(gateway);
    adminWatches.push(
      new AdminWatch({ io, gateway, presence, log, nodeId: config.nodeId, isAdmin: async (userId) => (await store.getUser(userId))?.role === "admin" }),
    );
    return gateway;
  };
  metrics.readFrom({
    connectedSockets: () => gateways.reduce((n, g) => n + g.size, 0),
    revocationInSync: () => revocations.inSync,
    revocationMarks: () => cache.size(),
  });

  // ---- HTTP ----
  const json = express.json({ limit: MAX_JSON_BODY_BYTES, type: ["application/json", "application/*+json"] });
  const errors = errorHandler(log);
  /**
   * Gatehouse's body parser, query-token refusal and error shape around `inner`, on `paths` only
   * (a router mounted at "/" must leave the host's other routes alone); null = every path (a router
   * mounted under its own prefix).
   */
  const selfContained = (paths: string[] | null, ...inner: RequestHandler[]): Router => {
    const r = Router();
    const on = (...handlers: (RequestHandler | typeof errors)[]) => (paths ? r.use(paths, ...handlers) : r.use(...handlers));
    on(refuseQueryTokens, json);
    r.use(...inner);
    on(errors);
    return r;
  };
  const readiness = {
    notReadyReason: async (): Promise<string | null> => {
      const reason = deps.notReadyReason?.();
      if (reason) return reason;
      if (!revocations.inSync) return "revocation feed is not in sync";
      if (!(await store.ping())) return "store is unreachable";
      return null;
    },
  };
  const routers = {
    // Mounted under /auth and /admin: every path below the prefix is theirs.
    auth: selfContained(null, Router().use(["/login", "/password"], lockoutLog(log)), authRoutes({ accounts, check, revocations, limits, users })),
    admin: selfContained(null, adminActionLog(log), adminRoutes({ check, store, presence, revocations, clock })),
    // Flat (see sessionRoutes): a nested router costs microseconds on every /me.
    sessions: sessionRoutes({ check, store, users, presence, revocations, clock, limits }).use(["/me", "/sessions"], errors),
    ops: opsRoutes({ metrics, readiness, nodeId: config.nodeId }),
  };

  // ---- the revocation API: what the admin routes do, for code ----
  const audit = async (by: string | undefined, action: string, target?: string, detail?: Record<string, unknown>) => {
    const entry: AuditEntry = { id: newId(), at: new Date(clock.now()).toISOString(), actorId: "api", actorName: by ?? "api", action };
    if (target !== undefined) entry.target = target;
    if (detail !== undefined) entry.detail = detail;
    await store.appendAudit(entry);
    log.info({ admin: entry.actorName, action, target }, "admin action");
  };
  const existingUser = async (userId: string) => {
    const user = await store.getUser(userId);
    if (!user) throw new GatehouseError(ErrorCode.NOT_FOUND);
    return user;
  };
  const revoke = async (change: RevocationChange) => ({ seq: (await revocations.revoke(change)).seq });
  const noteOf = (reason: string | undefined) => (reason?.trim() ? { note: reason.trim() } : {});

  await revocations.start();

  // On the host's own routes: answer the refusal here (401, RFC 6750 header, the contract's shape)
  // rather than hand it to the host's error handler, which knows nothing of its codes.
  const bearer = requireAuth(check);
  const requireAuthHere: RequestHandler = (req, res, next) =>
    bearer(req, res, (err?: unknown) => (err instanceof GatehouseError ? sendError(res, err.code, err.message) : next(err)));

  let closed = false;
  return {
    config,
    log,
    routers,
    requireAuth: requireAuthHere,
    httpMetrics: httpMetrics(metrics, log),
    cors: cors(config.corsOrigins),
    socketCors: socketCors(config.corsOrigins),
    attach,
    async kick(userId, note = {}) {
      const user = await existingUser(userId);
      const result = await revoke({ kind: "user", userId: user.id, reason: "kicked", ...noteOf(note.reason) });
      await audit(note.by, "kick", user.id, { username: user.username, ...(note.reason ? { reason: note.reason } : {}) });
      return result;
    },
    async ban(userId, opts = {}) {
      const user = await existingUser(userId);
      const until = opts.until === undefined || opts.until === null ? null : new Date(opts.until).getTime();
      if (until !== null && !(until > clock.now())) throw new GatehouseError(ErrorCode.VALIDATION_FAILED, "Invalid until: must be in the future");
      const result = await revoke({
        kind: "user",
        userId: user.id,
        reason: "banned",
        ban: { until, ...(opts.reason ? { reason: opts.reason } : {}) },
        ...noteOf(opts.reason),
      });
      await audit(opts.by, "ban", user.id, { username: user.username, until: until === null ? null : new Date(until).toISOString(), ...(opts.reason ? { reason: opts.reason } : {}) });
      return result;
    },
    async unban(userId, opts = {}) {
      const user = await existingUser(userId);
      const result = await revoke({ kind: "unban", userId: user.id, reason: "unbanned" });
      await audit(opts.by, "unban", user.id, { username: user.username });
      return result;
    },
    async revokeSession(sessionId, note = {}) {
      const session = await store.getSession(sessionId);
      if (!session) throw new GatehouseError(ErrorCode.NOT_FOUND);
      const result = await revoke({ kind: "session", userId: session.userId, sessionId, reason: "session_revoked", ...noteOf(note.reason) });
      await audit(note.by, "revoke_session", sessionId, { userId: session.userId, ...(note.reason ? { reason: note.reason } : {}) });
      return result;
    },
    async revokeAll(opts = {}) {
      const result = await revoke({ kind: "global", reason: "revoked_all" });
      await audit(opts.by, "revoke_all");
      return result;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const gateway of gateways) gateway.close();
      for (const watch of adminWatches) watch.close();
      await revocations.close();
      await presence.close();
      // The feed before the store: on Redis it rides on the store's connections.
      await feed.close();
      await store.close();
      await redis?.quit();
    },
    clock,
    store,
    feed,
    cache,
    revocations,
    check,
    tokens,
    metrics,
    presence,
    limits,
    users,
    redis,
  };
}
