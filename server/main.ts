/** Process entry: config from env, the app, signals. The only module that reads process.env. */
import { createApp } from "./app";
import { ConfigError, loadConfig, type Config } from "./config";
import { createLogger } from "./logger";

const SHUTDOWN_DEADLINE_MS = 10_000;
/** How long a stopping node keeps answering HTTP (/readyz 503) before it stops listening. */
const DRAIN_MS = 1_000;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  // A person watching a terminal reads lines; anything else (a file, a collector) gets JSON.
  const log = createLogger({ level: config.logLevel, nodeId: config.nodeId, pretty: process.stdout.isTTY === true });
  if (config.redisClusterNodes) {
    log.info({ nodeId: config.nodeId, seeds: config.redisClusterNodes.length }, "cluster mode: state in a Redis Cluster");
  } else if (config.redisUrl) {
    log.info({ nodeId: config.nodeId }, "cluster mode: state in Redis");
  } else {
    log.warn(
      { nodeId: config.nodeId },
      "embedded mode: single node, in-memory store; all accounts and sessions are lost on restart" +
        (config.jwtSecretGenerated ? " (JWT_SECRET generated for this process)" : ""),
    );
  }
  const app = await createApp(config, { logger: log });
  const port = await app.listen();
  const listening = `listening on http://${config.host}:${port}`;
  // The contract promises this line whatever LOG_LEVEL says: launchers wait for it.
  if (log.isLevelEnabled("info")) log.info(listening);
  else process.stdout.write(`${listening}\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const deadline = setTimeout(() => {
      log.error("shutdown took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    // Players move at once (transport close: their clients reconnect elsewhere); HTTP stays up a
    // moment longer so a balancer polling /readyz sees 503 rather than a refused connection.
    app.drain();
    setTimeout(() => {
      app.close().then(
        () => {
          log.info("stopped");
          log.flush?.();
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    }, DRAIN_MS);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`gatehouse failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
