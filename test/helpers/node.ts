/** In-process Gatehouse nodes for integration tests (real HTTP, real socket.io, real Redis when given). */
import { Writable } from "node:stream";
import { pino } from "pino";
import { createApp, type App } from "../../server/app";
import { loadConfig } from "../../server/config";
import { REDACT_PATHS } from "../../server/logger";
import type { Clock } from "../../server/clock";

export interface TestNode {
  app: App;
  url: string;
  port: number;
  /** every log line the node wrote, as raw text */
  logs: string[];
  close(): Promise<void>;
}

export const TEST_SECRET = "test-secret-that-is-at-least-32-bytes-long!!";

/** Env that switches rate limits off unless a test turns one on. */
export { NO_LIMITS } from "../../scripts/lib/no-limits";
import { NO_LIMITS } from "../../scripts/lib/no-limits";

export async function startNode(env: Record<string, string | undefined> = {}, opts: { clock?: Clock } = {}): Promise<TestNode> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    JWT_SECRET: TEST_SECRET,
    ADMIN_USERNAME: "admin",
    ADMIN_PASSWORD: "admin-password-1",
    LOG_LEVEL: "debug",
    ...NO_LIMITS,
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString("utf8"));
      cb();
    },
  });
  const logger = pino({ level: config.logLevel, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, sink);
  const app = await createApp(config, { logger, ...(opts.clock ? { clock: opts.clock } : {}) });
  const port = await app.listen();
  return { app, url: `http://127.0.0.1:${port}`, port, logs, close: () => app.close() };
}
