/**
 * The composition root: builds the store, the revocation machinery, express and
 * socket.io from a Config, and returns { listen, close }. main.ts calls it; so
 * do the in-process tests.
 */
import { createServer, type Server as HttpServer } from "node:http";
import path from "node:path";
import express from "express";
import { Server as IoServer } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { ErrorCode, GatehouseError } from "../shared/errors";
import { MAX_JSON_BODY_BYTES } from "../shared/protocol";
import { Accounts } from "./auth/accounts";
import { createTokenCheck, withReadThrough, type LiveTokenCheck } from "./auth/check";
import { hashPassword } from "./auth/passwords";
import { UserDirectory } from "./auth/user-directory";
import { CLOCK_TOLERANCE_SEC, TokenService } from "./auth/tokens";
import { systemClock, type Clock } from "./clock";
import type { Config } from "./config";
import { answerMalformedRequests, errorHandler } from "./http/errors";
import { refuseQueryTokens } from "./http/auth-middleware";
import { createRateLimits } from "./http/rate-limits";
import { adminRoutes } from "./http/routes-admin";
import { authRoutes } from "./http/routes-auth";
import { opsRoutes } from "./http/routes-ops";
import { pageRoutes } from "./http/routes-pages";
import { sessionRoutes } from "./http/routes-sessions";
import { createLogger } from "./logger";
import { createMetrics, type Metrics } from "./metrics";
import { Gateway } from "./realtime/gateway";
import { MemoryPresence, RedisPresence, type Presence } from "./realtime/presence";
import { RevocationCache } from "./revocation/cache";
import { Revocations } from "./revocation/revocations";
import { MemoryStore } from "./store/memory";
import { COMMAND_TIMEOUT_MS, RedisStore } from "./store/redis";
import type { Store } from "./store/store";
import { registerGame, type GameHandle } from "./game/rooms";

export interface AppDeps {
  clock?: Clock;
  logger?: Logger;
  /** where the built pages live (default: ./dist/public) */
  publicDir?: string;
}

export interface App {
  config: Config;
  store: Store;
  io: IoServer;
  http: HttpServer;
  gateway: Gateway;
  revocations: Revocations;
  cache: RevocationCache;
  check: LiveTokenCheck;
  tokens: TokenService;
  metrics: Metrics;
  log: Logger;
  /** starts listening; resolves with the bound port */
  listen(): Promise<number>;
  /**
   * first step of a graceful stop: /readyz 503, no new socket.io connections (refused at the
   * engine, so clients keep retrying, elsewhere), live sockets closed as a transport close;
   * HTTP is still answered (Connection: close) so balancers can see the 503
   */
  drain(): void;
  /** graceful stop: drain, then stop listening and close Redis cleanly */
  close(): Promise<void>;
}

/** Largest request header block / socket.io packet accepted (128 KB). */
const MAX_WIRE_BYTES = 128 * 1024;

export async function createApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? createLogger({ level: config.logLevel, nodeId: config.nodeId });
  // Sources are read at scrape time; gateway and revocations exist by then.
  let gateway: Gateway | undefined;
  let revocations: Revocations | undefined;
  const cache = new RevocationCache();
  const metrics = createMetrics(config.nodeId, {
    connectedSockets: () => gateway?.size ?? 0,
    revocationInSync: () => revocations?.inSync ?? false,
    revocationMarks: () => cache.size(),
  });

  // ---- backends, chosen once ----
  let store: Store;
  let redis: Redis | null = null;
  let adapterClients: Redis[] = [];
  if (config.redisUrl) {
    store = await RedisStore.connect({ url: config.redisUrl, logger: log });
    const mk = (name: string) => {
      const c = new Redis(config.redisUrl!, {
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
    redis = mk("limits");
    adapterClients = [mk("adapter-pub"), mk("adapter-sub")];
  } else {
    store = new MemoryStore();
  }
  const presence: Presence = redis ? new RedisPresence(redis, config.nodeId, log) : new MemoryPresence();

  // ---- auth ----
  const tokens = new TokenService(config.jwtSecret, { issuer: config.jwtIssuer, audience: config.jwtAudience, accessTtlMs: config.accessTokenTtlMs, previousSecrets: config.jwtSecretPrevious }, clock);
  revocations = new Revocations(store, cache, clock, log, {
    nodeId: config.nodeId,
    // Marks must outlive every token they cover, including the exp clock tolerance.
    markTtlMs: config.accessTokenTtlMs + (CLOCK_TOLERANCE_SEC + 1) * 1000,
    maxStalenessMs: config.revocationMaxStalenessMs,
    enforce: (e) => gateway?.enforce(e),
    sweep: () => gateway?.sweep(),
    onEventApplied: (e, source) => metrics.revocations.inc({ reason: e.reason, source }),
    onFeedRejected: () => metrics.feedRejected.inc(),
    onUnconfirmed: (e, missing) => metrics.revocationsUnconfirmed.inc({ reason: e.reason }, missing),
    onStoreReset: async () => {
      try {
        await ensureAdmin?.();
      } catch (err) {
        // Once per store loss (never retried in a loop): the operator must act, e.g. rename ADMIN_USERNAME.
        log.error({ err: (err as Error).message }, "admin account not re-created after the store lost its data");
      }
    },
  });
  const check = withReadThrough(createTokenCheck({ tokens, cache, clock, revocationAvailable: () => revocations.available() }), {
    inSync: () => revocations.inSync,
    readMarksFor: (claims) => revocations.readMarksFor(claims),
  });
  const limits = createRateLimits(config, redis);
  const users = new UserDirectory(store);
  const accounts = new Accounts({
    store,
    tokens,
    revocations,
    clock,
    refreshTtlMs: config.refreshTokenTtlMs,
    refreshReuseGraceMs: config.refreshReuseGraceMs,
  });

  // Created at start and again if the store loses its data (a Redis without persistence restarted).
  let ensureAdmin: (() => Promise<void>) | undefined;
  if (config.adminUsername && config.adminPassword) {
    const username = config.adminUsername;
    const password = config.adminPassword;
    const passwordHash = await hashPassword(password);
    ensureAdmin = async () => {
      const outcome = await accounts.ensureAdmin(username, password, passwordHash);
      if (outcome === "reset") log.warn({ username }, "admin password reset from ADMIN_PASSWORD; its earlier sessions were revoked");
      else log.info({ username }, outcome === "created" ? "admin account created" : "admin account ready");
    };
    await ensureAdmin();
  }

  // ---- HTTP ----
  /** draining or closing: /readyz 503, no new socket.io connections, no keep-alive */
  let shuttingDown = false;
  let closing = false;
  const app = express();
  app.disable("x-powered-by");
  // API answers are small and per-user: an ETag (a hash of every body) buys nothing.
  app.set("etag", false);
  if (config.trustProxy !== undefined) app.set("trust proxy", config.trustProxy);
  app.use((req, res, next) => {
    // Stopping: no keep-alive. server.close() only drops connections idle at that instant; one a
    // load balancer keeps busy (health checks on /readyz) would hold the exit past the deadline.
    if (shuttingDown) res.setHeader("Connection", "close");
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : ((res.locals.metricsRoute as string | undefined) ?? "unmatched");
      metrics.httpRequests.inc({ method: req.method, route, status: res.statusCode });
      metrics.httpDuration.observe({ method: req.method, route }, Number(process.hrtime.bigint() - started) / 1e9);
      // Path only: a query string could carry a token someone tried to send there.
      log.debug({ method: req.method, path: req.path, status: res.statusCode }, "http");
    });
    next();
  });
  if (config.corsOrigins.length > 0) {
    app.use((req, res, next) => {
      const origin = req.headers.origin;
      if (origin && config.corsOrigins.includes(origin)) {
        res.setHeader("Access-Control-Allow-Origin", origin);
        res.setHeader("Vary", "Origin");
        res.setHeader("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.setHeader("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      }
      if (req.method === "OPTIONS") return void res.status(204).end();
      next();
    });
  }
  app.use(refuseQueryTokens);
  app.use(express.json({ limit: MAX_JSON_BODY_BYTES, type: ["application/json", "application/*+json"] }));
  const readiness = {
    notReadyReason: async (): Promise<string | null> => {
      if (shuttingDown) return "node is shutting down";
      if (!revocations.inSync) return "revocation feed is not in sync";
      if (!(await store.ping())) return "store is unreachable";
      return null;
    },
  };
  // Routers sit under their prefix so a request skips the ones it cannot match in one test;
  // the hot authenticated routes (/me, /sessions) come right after the probes and the pages.
  app.use(opsRoutes({ metrics, readiness, nodeId: config.nodeId }));
  // Pages before the API routers: the admin API guards everything under /admin, the page included.
  app.use(pageRoutes(deps.publicDir ?? path.join(process.cwd(), "dist", "public")));
  app.use(sessionRoutes({ check, store, users, presence, revocations, clock, limits }));
  app.use("/auth", authRoutes({ accounts, check, revocations, limits, users }));
  app.use("/admin", adminRoutes({ check, store, presence, revocations, clock }));
  app.use((_req, _res, next) => next(new GatehouseError(ErrorCode.NOT_FOUND)));
  app.use(errorHandler(log));

  // ---- socket.io ----
  // Headers and socket.io packets may be far larger than any valid token (4 KB),
  // so that an oversized token reaches the check and gets its TOKEN_INVALID
  // instead of a bare 431 / a silently closed socket. Both stay bounded.
  const http = createServer({ maxHeaderSize: MAX_WIRE_BYTES }, app);
  answerMalformedRequests(http);
  const io = new IoServer(http, {
    serveClient: false,
    maxHttpBufferSize: MAX_WIRE_BYTES,
    // An engine.io connection that never sends its socket.io CONNECT (where auth and the
    // handshake limit run) is dropped after this instead of socket.io's 45 s default.
    connectTimeout: 10_000,
    // Draining: refused at the engine (not in io.use), so a client treats it as a transport
    // failure and retries (through the balancer, to another node) instead of giving up.
    allowRequest: (_req, callback) => callback(shuttingDown ? "node is shutting down" : null, !shuttingDown),
    cors: config.corsOrigins.length > 0 ? { origin: config.corsOrigins, credentials: false } : undefined,
    // connectionStateRecovery stays OFF: recovery would skip the handshake check (pitfall 3).
  });
  if (adapterClients.length === 2) {
    io.adapter(createAdapter(adapterClients[0]!, adapterClients[1]!, { key: "gh:io", publishOnSpecificResponseChannel: true }));
  }
  gateway = new Gateway({
    io,
    check,
    cache,
    clock,
    log,
    metrics,
    presence,
    nodeId: config.nodeId,
    handshakeLimiter: limits.handshakeIp,
    // Exactly express's req.ip (same "trust proxy" setting), for the handshake's raw request.
    clientIp: (raw) => (Object.create(app.request, { app: { value: app }, headers: { value: raw.headers }, socket: { value: raw.socket } }) as express.Request).ip,
    usernameOf: (userId) => users.usernameOf(userId),
  });
  const game: GameHandle = registerGame({ io, gateway, clock, log, nodeId: config.nodeId, clustered: adapterClients.length === 2, redis });

  await revocations.start();

  return {
    config,
    store,
    io,
    http,
    gateway,
    revocations,
    cache,
    check,
    tokens,
    metrics,
    log,
    listen: () =>
      new Promise((resolve, reject) => {
        http.once("error", reject);
        http.listen(config.port, config.host, () => {
          const addr = http.address();
          resolve(typeof addr === "object" && addr ? addr.port : config.port);
        });
      }),
    drain: () => {
      if (shuttingDown) return;
      shuttingDown = true;
      gateway!.closeAllAsTransportClose();
    },
    close: async () => {
      if (closing) return;
      closing = true;
      shuttingDown = true;
      game.close();
      gateway!.close();
      gateway!.closeAllAsTransportClose();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await revocations.close();
      await presence.close();
      await store.close();
      await Promise.all([redis, ...adapterClients].map((c) => c?.quit().catch(() => c.disconnect())));
    },
  };
}
