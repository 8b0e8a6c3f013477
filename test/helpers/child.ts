/** A child process whose output is read line by line, for tests that run a script as a user would. */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

export interface LineChild {
  proc: ChildProcess;
  /** every stdout and stderr line so far */
  lines: string[];
  /** the first line (already printed or still to come) matching `re`; rejects on exit or after `timeoutMs` */
  line(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** resolves with the exit code (null when killed by a signal) once its output is all read */
  exited: Promise<number | null>;
}

export function spawnLines(command: string, args: string[], opts: SpawnOptions = {}): LineChild {
  const proc = spawn(command, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  const watchers = new Set<() => void>();
  const exited = new Promise<number | null>((resolve) => proc.once("close", (code) => resolve(code)));
  for (const stream of [proc.stdout, proc.stderr]) {
    let buffered = "";
    stream?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      const parts = buffered.split(/\r?\n/);
      buffered = parts.pop() ?? "";
      lines.push(...parts);
      watchers.forEach((w) => w());
    });
  }
  const line = (re: RegExp, timeoutMs = 10_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        for (const l of lines) {
          const m = l.match(re);
          if (m) return done(() => resolve(m));
        }
      };
      const done = (settle: () => void) => {
        clearTimeout(timer);
        watchers.delete(check);
        settle();
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${lines.join("\n")}`))), timeoutMs);
      watchers.add(check);
      void exited.then(() => setImmediate(() => watchers.has(check) && done(() => reject(new Error(`exited before a line matching ${re}:\n${lines.join("\n")}`)))));
      check();
    });
  return { proc, lines, line, exited };
}
