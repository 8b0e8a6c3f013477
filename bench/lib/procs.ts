/**
 * Bench-only child processes (the baseline servers): spawned from dist/bench,
 * resolved once they print `listening on http://...`, and tracked so that none
 * outlives the bench (SIGTERM on stop, SIGKILL from the exit hook).
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface ChildServer {
  name: string;
  url: string;
  port: number;
  proc: ChildProcess;
  output: string[];
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;

function track(proc: ChildProcess): void {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => live.forEach((c) => c.kill("SIGKILL")));
  }
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
}

/** A bench helper process with an IPC channel (dist/bench/<entry>.js), tracked like the servers. */
export function forkChild(entry: string, env: Record<string, string>): ChildProcess {
  const proc = fork(fileURLToPath(new URL(`./${entry}.js`, import.meta.url)), [], { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  track(proc);
  return proc;
}

/** `entry` is a file next to the built bench (dist/bench/<entry>.js). */
export function startChildServer(name: string, entry: string, env: Record<string, string>): Promise<ChildServer> {
  const file = fileURLToPath(new URL(`./${entry}.js`, import.meta.url));
  const proc = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  track(proc);
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let buf = "";
    let ready = false;
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${name} did not start within 15 s:\n${output.join("\n")}`));
    }, 15_000);
    const onData = (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        output.push(line);
        if (output.length > 1000) output.splice(0, 500);
        const m = /listening on (http:\/\/[^\s:]+:(\d+))/.exec(line);
        if (!ready && m) {
          ready = true;
          clearTimeout(timer);
          resolve({
            name,
            url: m[1]!,
            port: Number(m[2]),
            proc,
            output,
            stop: async () => {
              if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
              await exited;
            },
          });
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.once("exit", (code) => {
      if (ready) return;
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening:\n${output.join("\n")}${buf}`));
    });
  });
}
