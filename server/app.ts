/**
 * The composition root of the standalone server: Gatehouse's parts (createGatehouse's), the
 * pages and the game, connected to one express app and one socket.io server. Returns
 * { listen, drain, close }. main.ts calls it; so do the in-process tests.
 */
import { createServer, type Server as HttpServer } from "node:http";
import path from "node:path";
import express from "express";
import { Server as IoServer } from "socket.io";
import type { Logger } from "pino";
import type { LiveTokenCheck } from "./auth/check";
import type { TokenService } from "./auth/tokens";
import type { Clock } from "./clock";
import type { Config } from "./config";
import { buildGatehouse, type Gatehouse } from "./gatehouse";
import { answerMalformedRequests, errorHandler } from "./http/errors";
import { closeConnectionsWhile } from "./http/middleware/close-while-stopping";
import { labelRoute } from "./http/middleware/http-metrics";
import { notFound } from "./http/middleware/not-found";
import { refuseQueryTokens } from "./http/middleware/refuse-query-tokens";
import { pageRoutes } from "./http/routes-pages";
import type { Metrics } from "./metrics";
import type { Gateway } from "./realtime/gateway";
import type { RevocationCache } from "./revocation/cache";
import type { Revocations } from "./revocation/revocations";
import type { Store } from "./store/store";
import { registerGame } from "./game/rooms";
import { RedisRoomBus } from "./rooms/bus";

export interface AppDeps {
  clock?: Clock;
  logger?: Logger;
  /** where the built pages live (default: ./dist/public) */
  publicDir?: string;
}

export interface App {
  config: Config;
  /** the embeddable parts this app is built from */
  gatehouse: Gatehouse;
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
  /** draining or closing: /readyz 503, no new socket.io connections, no keep-alive */
  let stopping = false;
  const gatehouse = await buildGatehouse(config, {
    ...deps,
    notReadyReason: () => (stopping ? "node is shutting down" : null),
  });
  const { log, metrics, routers } = gatehouse;

  // ---- HTTP ----
  const app = express();
  app.disable("x-powered-by");
  // API answers are small and per-user: an ETag (a hash of every body) buys nothing.
  app.set("etag", false);
  if (config.trustProxy !== undefined) app.set("trust proxy", config.trustProxy);
  app.use(closeConnectionsWhile(() => stopping));
  app.use(gatehouse.httpMetrics);
  if (config.corsOrigins.length > 0) app.use(gatehouse.cors);
  app.use(refuseQueryTokens);
  // Routers sit under their prefix so a request skips the ones it cannot match in one test.
  // The players' routes (/me, /sessions) first: each router a request passes costs it a few
  // microseconds (measured), and they are called far more often than the probes.
  app.use(routers.sessions);
  app.use(routers.ops);
  // Pages before the admin API: it guards everything under /admin, the page included.
  app.use("/static", labelRoute("/static/*"));
  app.use(pageRoutes(deps.publicDir ?? path.join(process.cwd(), "dist", "public")));
  app.use("/auth", routers.auth);
  app.use("/admin", routers.admin);
  app.use(notFound);
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
    allowRequest: (_req, callback) => callback(stopping ? "node is shutting down" : null, !stopping),
    cors: gatehouse.socketCors,
    // connectionStateRecovery stays OFF: recovery would skip the handshake check (pitfall 3).
  });
  const redis = gatehouse.redis;
  if (redis) io.adapter(redis.ioAdapter());
  const gateway = gatehouse.attach(io);
  // Room shares and ops on the adapter's connections, one channel per room (server/rooms/bus.ts).
  const bus = redis ? new RedisRoomBus(redis.adapter[0], redis.adapter[1], redis.cluster) : undefined;
  const game = registerGame({ io, gateway, clock: gatehouse.clock, log, nodeId: config.nodeId, clustered: redis !== null, redis: redis?.limits ?? null, ...(bus ? { bus } : {}) });

  let closing = false;
  return {
    config,
    gatehouse,
    store: gatehouse.store,
    io,
    http,
    gateway,
    revocations: gatehouse.revocations,
    cache: gatehouse.cache,
    check: gatehouse.check,
    tokens: gatehouse.tokens,
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
      if (stopping) return;
      stopping = true;
      gateway.closeAllAsTransportClose();
    },
    close: async () => {
      if (closing) return;
      closing = true;
      stopping = true;
      game.close();
      gateway.closeAllAsTransportClose();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await gatehouse.close();
    },
  };
}
