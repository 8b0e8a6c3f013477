/**
 * Starts a throwaway redis-server (tests, `npm run cluster`, the benchmarks; never
 * the shared 127.0.0.1:6379):
 * free port, no persistence, foreground, killed when the parent process exits.
 * Binary: $REDIS_SERVER_BIN or `redis-server` on PATH.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

export interface RedisProcess {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  /** SIGTERM, resolves once the process has exited */
  stop(): Promise<void>;
  /** SIGKILL (a crash), resolves once the process has exited */
  kill(): Promise<void>;
  /** starts again on the same port (stopping the current process first if it still runs); data is kept only with AOF in `args` */
  restart(): Promise<void>;
  /** SIGSTOP: a hung server whose connections stay open (the kernel still acknowledges TCP) */
  pause(): void;
  /** SIGCONT after pause() */
  resume(): void;
}

const READY_TIMEOUT_MS = 10_000;
const READY_LINE = "Ready to accept connections";

/** Every live child, so none outlives the test process. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/** A port nobody listens on right now (the OS picks it; tiny race until redis binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not get a free port"))));
    });
  });
}

class StartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

/** Spawns redis-server on `port` and resolves once it says it is ready. */
function spawnRedis(port: number, extraArgs: string[] = []): Promise<ChildProcess> {
  const bin = process.env.REDIS_SERVER_BIN || "redis-server";
  // Later arguments win: `extraArgs` may switch persistence on (e.g. --appendonly yes --dir <tmp>).
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", ...extraArgs];
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  child.once("exit", () => live.delete(child));

  return new Promise((resolve, reject) => {
    let output = "";
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new StartError(`redis-server (${bin}) on port ${port} ${why}. Output:\n${output}`, /address already in use/i.test(output)));
    };
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!settled && output.includes(READY_LINE)) {
        settled = true;
        clearTimeout(timer);
        // Keep draining the pipes so redis never blocks on a full one.
        resolve(child);
      }
    };
    const timer = setTimeout(() => fail(`was not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("error", (err) => fail(`could not start (${err.message}); install redis-server or set REDIS_SERVER_BIN`));
    child.once("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
  });
}

function signalAndWait(child: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

/** `args`: extra redis-server arguments, kept for restart() (with AOF on, restart() keeps the data). */
export async function startRedis(opts: { port?: number; args?: string[] } = {}): Promise<RedisProcess> {
  installExitHook();
  let child: ChildProcess | null = null;
  let port = opts.port ?? 0;
  // With a port of our choosing, another process may grab it first: pick again.
  for (let attempt = 0; ; attempt++) {
    if (!opts.port) port = await freePort();
    try {
      child = await spawnRedis(port, opts.args);
      break;
    } catch (err) {
      if (opts.port || !(err instanceof StartError) || !err.addressInUse || attempt >= 4) throw err;
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: () => signalAndWait(child, "SIGTERM"),
    kill: () => signalAndWait(child, "SIGKILL"),
    pause: () => void child?.kill("SIGSTOP"),
    resume: () => void child?.kill("SIGCONT"),
    restart: async () => {
      await signalAndWait(child, "SIGTERM");
      child = await spawnRedis(port, opts.args);
    },
  };
}
