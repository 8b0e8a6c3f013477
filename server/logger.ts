/**
 * pino logger. Secrets are never passed to it on purpose; the redaction list is
 * the second line of defence for anything that slips into a logged object.
 * JSON lines by default; `pretty` (main.ts sets it when stdout is a terminal)
 * writes one readable line per entry instead.
 */
import { Writable } from "node:stream";
import { pino, type Logger, type DestinationStream } from "pino";

export const REDACT_PATHS = [
  "token",
  "accessToken",
  "refreshToken",
  "password",
  "oldPassword",
  "newPassword",
  "authorization",
  "*.token",
  "*.accessToken",
  "*.refreshToken",
  "*.password",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "auth",
  "*.auth",
];

export interface LoggerOptions {
  level: string;
  nodeId: string;
  /** one human-readable line per entry instead of JSON (default false) */
  pretty?: boolean;
}

export function createLogger(opts: LoggerOptions, destination?: DestinationStream): Logger {
  const out = destination ?? pino.destination(1);
  return pino(
    { level: opts.level, base: { node: opts.nodeId }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } },
    opts.pretty ? prettyStream(out) : out,
  );
}

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value ...` (local time; the node name,
 * pid and host left out: a terminal shows one process). Anything not JSON passes through.
 */
export function formatLogLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, pid: _pid, hostname: _host, node: _node, err, ...fields } = entry;
  const at = typeof time === "number" ? new Date(time) : new Date();
  const clock = `${at.toTimeString().slice(0, 8)}.${String(at.getMilliseconds()).padStart(3, "0")}`;
  const parts = [clock, LEVELS[level as number] ?? String(level), String(msg ?? "")];
  for (const [key, value] of Object.entries(fields)) parts.push(`${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  let text = parts.join(" ");
  const stack = (err as { stack?: unknown } | undefined)?.stack;
  if (typeof stack === "string") text += `\n${stack}`;
  else if (err !== undefined) text += ` err=${JSON.stringify(err)}`;
  return text;
}

/** A pino destination that rewrites each JSON line with formatLogLine before writing it to `out`. */
export function prettyStream(out: DestinationStream): DestinationStream {
  let pending = "";
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) out.write(`${formatLogLine(line)}\n`);
      cb();
    },
  });
}
