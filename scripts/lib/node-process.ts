/**
 * Starts a Gatehouse node as a child process (`node dist/server/main.js`), for
 * cluster tests, `npm run cluster` and the benchmarks. Resolves once the node
 * prints its `listening on` line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";

export interface NodeProcess {
  nodeId: string;
  port: number;
  url: string;
  proc: ChildProcess;
  /** every line the node printed (JSON logs), newest last */
  output: string[];
  /** SIGTERM and wait for exit; resolves with the exit code */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash) and wait for exit */
  kill(): Promise<void>;
}

const START_TIMEOUT_MS = 20_000;
const live = new Set<ChildProcess>();
let hooked = false;

/** Where the built server lives, relative to the project root (cwd or this file). */
function mainJs(): string {
  return path.join(process.cwd(), "dist", "server", "main.js");
}

export function startNodeProcess(opts: { port: number; env: Record<string, string>; nodeId?: string; echo?: boolean }): Promise<NodeProcess> {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => live.forEach((c) => c.kill("SIGKILL")));
  }
  const nodeId = opts.nodeId ?? `node-${opts.port}`;
  const env = { ...process.env, ...opts.env, PORT: String(opts.port), HOST: "127.0.0.1", NODE_ID: nodeId };
  // CPU_PROF_DIR: each node writes a V8 CPU profile there when it exits (--cpu-prof cannot be
  // passed through NODE_OPTIONS). How the bench's figures were explained: docs/benchmarks.md.
  const profile = process.env.CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.CPU_PROF_DIR}`] : [];
  const proc = spawn(process.execPath, [...profile, mainJs()], { env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  const output: string[] = [];
  const url = `http://127.0.0.1:${opts.port}`;

  const waitExit = () =>
    new Promise<number | null>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
      proc.once("exit", (code) => resolve(code));
    });

  return new Promise((resolve, reject) => {
    let buffered = "";
    let ready = false;
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        output.push(line);
        if (output.length > 5000) output.splice(0, 1000);
        if (opts.echo) process.stderr.write(`[${nodeId}] ${line}\n`);
        if (!ready && line.includes("listening on http://")) {
          ready = true;
          clearTimeout(timer);
          resolve({
            nodeId,
            port: opts.port,
            url,
            proc,
            output,
            stop: () => {
              proc.kill("SIGTERM");
              return waitExit();
            },
            kill: async () => {
              proc.kill("SIGKILL");
              await waitExit();
            },
          });
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`node ${nodeId} did not start within ${START_TIMEOUT_MS} ms:\n${output.slice(-20).join("\n")}`));
    }, START_TIMEOUT_MS);
    proc.once("exit", (code) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`node ${nodeId} exited with ${code} before listening:\n${output.slice(-20).join("\n")}${buffered}`));
    });
  });
}
