/**
 * What every phase of the bench shares: the parameters (env knobs), the sanity
 * checks list, progress logging, and small helpers over /metrics and /proc.
 */
import { NO_LIMITS } from "../../scripts/lib/no-limits";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { metric, scrape } from "./api";
import { processCpuMs } from "./cpu";
import { round, sleep, type Summary } from "./stats";

export const quick = process.env.BENCH_QUICK === "1";

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`${name} must be a positive integer (got ${JSON.stringify(v)})`);
    process.exit(1);
  }
  return n;
}

export const PHASES = ["memory", "propagation", "handshake", "http", "redis", "mass", "banwave"] as const;
export type PhaseName = (typeof PHASES)[number];
/** BENCH_ONLY=http,mass runs a subset (development); a normal run does them all. */
export const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((x) => x.trim()) : null;
if (only && !only.every((x) => (PHASES as readonly string[]).includes(x))) {
  console.error(`BENCH_ONLY takes a comma-separated subset of ${PHASES.join(",")}`);
  process.exit(1);
}

/** Bench-only preload: a full GC on SIGUSR2, used by the memory figure only (see bench/baseline/gc-probe.ts). */
export const gcProbeNodeOptions = `${process.env.NODE_OPTIONS ?? ""} --expose-gc --import="${fileURLToPath(new URL("./gc-probe.js", import.meta.url))}"`.trim();

export const params = {
  nodes: 3,
  phases: (only ?? [...PHASES]) as string[],
  clusterEnv: {
    ...NO_LIMITS,
    // Not "warn": a node prints its `listening on` line at info level, and the
    // cluster helper waits for that line. Nothing is logged at info per request
    // or per socket (http lines are debug), so this costs nothing during the run.
    LOG_LEVEL: "info",
    NODE_OPTIONS: gcProbeNodeOptions,
  },
  /** max handshakes in flight while preparing idle sockets */
  connectConcurrency: 50,
  propagation: {
    kicks: envInt("BENCH_KICKS", quick ? 30 : 300),
    /** users prepared (3 sockets each, one per node) before each series of kicks */
    usersPerBatch: quick ? 30 : 100,
    /** a kick whose sockets are not all gone after this counts as a failure */
    timeoutMs: 5000,
  },
  handshake: {
    concurrency: 16,
    /** warm-up before each measured window: first round / later rounds (discarded) */
    warmupMs: quick ? 300 : 1000,
    laterWarmupMs: quick ? 100 : 250,
    /** per window; every server gets rounds x durationMs in all */
    durationMs: envInt("BENCH_HANDSHAKE_DURATION_MS", quick ? 1000 : 2000),
    /** rounds alternate the order of the servers, so drift or a burst of other load does not favour one */
    rounds: quick ? 2 : 4,
  },
  http: {
    concurrency: 64,
    warmupMs: quick ? 300 : 1000,
    laterWarmupMs: quick ? 100 : 250,
    durationMs: envInt("BENCH_HTTP_DURATION_MS", quick ? 1000 : 2000),
    rounds: quick ? 2 : 4,
    /** then one connection, one request at a time, per target: latency without queueing */
    serialMs: quick ? 500 : 1500,
  },
  redis: {
    /** an idle window (background commands: heartbeats, presence) then a load window of the same length */
    windowMs: quick ? 1000 : 3000,
    concurrency: 16,
  },
  mass: {
    sockets: envInt("BENCH_MASS_SOCKETS", quick ? 600 : 5000),
    users: quick ? 10 : 50,
    /** idle window scraped first, for the event-loop-lag floor of an idle node */
    idleWindowMs: quick ? 1000 : 2000,
    timeoutMs: 60_000,
  },
  banwave: {
    users: quick ? 20 : 100,
    socketsPerUser: quick ? 6 : 20,
    /** one innocent player per node sends an ack-ed event this often */
    pingEveryMs: 5,
    timeoutMs: 30_000,
  },
  memory: {
    sockets: envInt("BENCH_MEMORY_SOCKETS", quick ? 300 : 10_000),
    users: 20,
    warmupSockets: 200,
    settleMs: quick ? 1000 : 3000,
    /** memory samples on each side (median taken), 500 ms apart */
    samples: 3,
  },
};
export type BenchParams = typeof params;

// ---- sanity checks and progress

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
export const checks: Check[] = [];
export function check(name: string, ok: boolean, detail = ""): boolean {
  checks.push({ name, ok, detail });
  if (!ok) log(`CHECK FAILED: ${name}${detail ? ` (${detail})` : ""}`);
  return ok;
}

const t0Run = performance.now();
export const elapsedSeconds = () => (performance.now() - t0Run) / 1000;
export function log(msg: string): void {
  process.stderr.write(`[bench +${elapsedSeconds().toFixed(1)}s] ${msg}\n`);
}

// ---- helpers

/** the cluster's redis-server pid, for its CPU time (naive baseline figures include it) */
export const procs: { redisPid: number | undefined } = { redisPid: undefined };

/** CPU used by a server process (and by redis-server) while `run` drives load at it. */
export async function withServerCpu<T>(pid: number | undefined, run: () => Promise<T>): Promise<{ result: T; serverCpuMs: number | null; redisCpuMs: number | null }> {
  const s0 = processCpuMs(pid);
  const r0 = processCpuMs(procs.redisPid);
  const result = await run();
  const s1 = processCpuMs(pid);
  const r1 = processCpuMs(procs.redisPid);
  return { result, serverCpuMs: s0 !== null && s1 !== null ? s1 - s0 : null, redisCpuMs: r0 !== null && r1 !== null ? r1 - r0 : null };
}

/** Sum of CPU ms used by these processes so far (null if any is unknown). */
export function cpuOfAll(pids: (number | undefined)[]): number | null {
  let sum = 0;
  for (const pid of pids) {
    const c = processCpuMs(pid);
    if (c === null) return null;
    sum += c;
  }
  return sum;
}

export const ms = (x: number) => round(x, 3);
export const round1 = (x: number) => round(x, 1);
export type MsSummary = { n: number; min: number; p50: number; p90: number; p99: number; max: number; mean: number };
export function summaryMs(s: Summary): MsSummary {
  return { n: s.n, min: ms(s.min), p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max), mean: ms(s.mean) };
}

export async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await cond()) return;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

export async function connectedOn(url: string): Promise<number> {
  return metric(await scrape(url), "gatehouse_connected_sockets");
}

/** Ratio of a to b within each round (same conditions), to show how much a ratio moved during the run. */
export function perRoundRatios(a: number[], b: number[]): number[] {
  return a.map((x, i) => round(x / (b[i] ?? Number.NaN), 3));
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

export function jtiOf(token: string): string {
  const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti?: unknown };
  return String(payload.jti);
}
