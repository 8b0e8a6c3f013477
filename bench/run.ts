/**
 * `npm run bench`: the benchmarks of contract section 7, side by side in one
 * run, on a local 3-node cluster with its own redis-server (never the shared
 * one), plus bench-only baseline servers (child processes, bench/baseline/):
 *
 *   1. revocation propagation: admin kick -> the user's sockets on all 3 nodes gone
 *   2. handshake rate: Gatehouse node (full check) vs a plain socket.io server (auth off)
 *   3. HTTP rate: GET /me (Bearer) vs GET /healthz, and vs a naive express + JWT + Redis GET baseline
 *   4. mass revocation: revoke-all with >= 5,000 live sockets; time and worst event-loop stall
 *   5. memory per idle authenticated socket
 *
 * Prints a table and writes bench/results/latest.json (and a dated copy).
 * Every child process is stopped at the end, also on failure and Ctrl-C.
 * The client side runs in this process: on a small machine it shares the CPU
 * with the servers, so absolute rates are pessimistic; the ratios are the point.
 * Rates are therefore also given as server CPU per operation (from /proc), and
 * each phase records how much CPU other processes on the machine took.
 * Sanity checks (counts, reasons, refusals) are printed; any failure exits 1.
 *
 * Knobs (env): BENCH_QUICK=1 (a fast smoke run with small numbers, for
 * development), BENCH_ONLY=<phase,...>, BENCH_KICKS, BENCH_MASS_SOCKETS,
 * BENCH_MEMORY_SOCKETS, BENCH_HTTP_DURATION_MS, BENCH_HANDSHAKE_DURATION_MS.
 * See docs/benchmarks.md.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { startLocalCluster, type LocalCluster } from "../scripts/lib/local-cluster";
import type { NodeProcess } from "../scripts/lib/node-process";
import { apiAgent, call, guest, login, metric, scrape, sumSeries, type Scrape } from "./lib/api";
import { cpuSince, cpuSnapshot, descendants, findDescendant, processCpuMs, schedStat, type CpuUsage } from "./lib/cpu";
import { checkMicro } from "./lib/check-micro";
import { handshakeLoad, type HandshakeLoadResult } from "./lib/handshake-load";
import { httpLoad, type HttpLoadResult } from "./lib/http-load";
import { machineInfo, type MachineInfo } from "./lib/machine";
import { startChildServer, type ChildServer } from "./lib/procs";
import { closeAll, liveSockets, openMany, type SocketSpec } from "./lib/sockets";
import { fmt, fmtInt, mapLimit, round, sleep, summarize, withTimeout, type Summary } from "./lib/stats";

// ---------------------------------------------------------------- parameters

const quick = process.env.BENCH_QUICK === "1";
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

const PHASES = ["memory", "propagation", "handshake", "http", "mass"] as const;
/** BENCH_ONLY=http,mass runs a subset (development); a normal run does all five. */
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((x) => x.trim()) : null;
if (only && !only.every((x) => (PHASES as readonly string[]).includes(x))) {
  console.error(`BENCH_ONLY takes a comma-separated subset of ${PHASES.join(",")}`);
  process.exit(1);
}

const params = {
  nodes: 3,
  phases: only ?? [...PHASES],
  clusterEnv: {
    RATE_LIMIT_LOGIN_IP: "0",
    RATE_LIMIT_HANDSHAKE_IP: "0",
    RATE_LIMIT_LOGIN_USER: "0",
    RATE_LIMIT_REFRESH_SESSION: "0",
    // Not "warn": a node prints its `listening on` line at info level, and the
    // cluster helper waits for that line. Nothing is logged at info per request
    // or per socket (http lines are debug), so this costs nothing during the run.
    LOG_LEVEL: "info",
    // Bench-only preload: a full GC on SIGUSR2, used by the memory figure only (see bench/baseline/gc-probe.ts).
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --expose-gc --import="${fileURLToPath(new URL("./gc-probe.js", import.meta.url))}"`.trim(),
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
  mass: {
    sockets: envInt("BENCH_MASS_SOCKETS", quick ? 600 : 5000),
    users: quick ? 10 : 50,
    /** idle window scraped first, for the event-loop-lag floor of an idle node */
    idleWindowMs: 2000,
    timeoutMs: 60_000,
  },
  memory: {
    sockets: envInt("BENCH_MEMORY_SOCKETS", quick ? 300 : 2000),
    users: 20,
    warmupSockets: 200,
    settleMs: 3000,
    /** /metrics samples on each side (median taken), 500 ms apart */
    samples: 3,
  },
};

// ---------------------------------------------------------------- bookkeeping

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];
function check(name: string, ok: boolean, detail = ""): boolean {
  checks.push({ name, ok, detail });
  if (!ok) log(`CHECK FAILED: ${name}${detail ? ` (${detail})` : ""}`);
  return ok;
}

const t0Run = performance.now();
function log(msg: string): void {
  process.stderr.write(`[bench +${((performance.now() - t0Run) / 1000).toFixed(1)}s] ${msg}\n`);
}

let cluster: LocalCluster | undefined;
let plainIo: ChildServer | undefined;
let plainJwtIo: ChildServer | undefined;
let naiveHttp: ChildServer | undefined;
let redisClient: Redis | undefined;
let cleaning: Promise<void> | undefined;
/** the cluster's redis-server, for its CPU time (naive baseline figures include it) */
let redisPid: number | undefined;

/** CPU used by a server process (and by redis-server) while `run` drives load at it. */
async function withServerCpu<T>(pid: number | undefined, run: () => Promise<T>): Promise<{ result: T; serverCpuMs: number | null; redisCpuMs: number | null }> {
  const s0 = processCpuMs(pid);
  const r0 = processCpuMs(redisPid);
  const result = await run();
  const s1 = processCpuMs(pid);
  const r1 = processCpuMs(redisPid);
  return { result, serverCpuMs: s0 !== null && s1 !== null ? s1 - s0 : null, redisCpuMs: r0 !== null && r1 !== null ? r1 - r0 : null };
}

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const s of liveSockets) s.disconnect();
    redisClient?.disconnect();
    await Promise.allSettled([plainIo?.stop(), plainJwtIo?.stop(), naiveHttp?.stop(), cluster?.stop()]);
    apiAgent.destroy();
  })();
  return cleaning;
}

let exiting = false;
async function shutdownAndExit(code: number): Promise<void> {
  // The first caller decides the exit code (Ctrl-C: 130), later ones (the interrupted run failing) wait.
  if (exiting) return;
  exiting = true;
  try {
    await withTimeout(cleanup(), 20_000, "stopping child processes");
  } catch (err) {
    log(`${(err as Error).message}; killing what is left`);
  }
  // No orphans: anything of ours still alive is named and killed (the exit hooks cover the rest).
  const left = descendants();
  for (const [pid, comm] of left) {
    if (comm === "sh" || comm === "getconf") continue;
    log(`child process ${pid} (${comm}) still alive after stop: killing it`);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if ([...left.values()].every((c) => c === "sh" || c === "getconf")) log("every child process stopped");
  // The exit hooks of the process helpers SIGKILL anything still alive.
  process.exit(code);
}

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping every child process...`);
    void shutdownAndExit(130);
  });
}

const ms = (x: number) => round(x, 3);
function summaryMs(s: Summary) {
  return { n: s.n, min: ms(s.min), p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max), mean: ms(s.mean) };
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await cond()) return;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

async function connectedOn(url: string): Promise<number> {
  return metric(await scrape(url), "gatehouse_connected_sockets");
}

const round1 = (x: number) => round(x, 1);

/** Ratio of a to b within each round (same conditions), to show how much a ratio moved during the run. */
function perRoundRatios(a: number[], b: number[]): number[] {
  return a.map((x, i) => round(x / (b[i] ?? Number.NaN), 3));
}

const spread = (xs: number[]) => (xs.length ? `rounds ${fmt(Math.min(...xs), 2)}-${fmt(Math.max(...xs), 2)}` : "");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

function jtiOf(token: string): string {
  const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { jti?: unknown };
  return String(payload.jti);
}

// ---------------------------------------------------------------- 5. memory

async function benchMemory(node: NodeProcess) {
  const p = params.memory;
  const url = node.url;
  // Full GC before each sample when the probe is loaded: live heap, not garbage left by handshakes.
  const gcProbe = node.output.some((l) => l.includes("bench gc probe ready"));
  check("memory: gc probe loaded in the node (heap measured after a full GC)", gcProbe);
  const fullGc = async () => {
    if (!gcProbe) return;
    node.proc.kill("SIGUSR2");
    await sleep(300);
  };
  log(`memory: warming up node 0 with ${p.warmupSockets} connect/disconnects`);
  const warmTok = (await guest(url)).accessToken;
  const warm = await openMany(Array.from({ length: p.warmupSockets }, () => ({ url, token: warmTok, node: 0 })), params.connectConcurrency);
  closeAll(warm);
  await waitFor("warm-up sockets gone on node 0", async () => (await connectedOn(url)) === 0, 15_000);
  const tokens = (await mapLimit(Array.from({ length: p.users }), 5, () => guest(url))).map((t) => t.accessToken);
  await sleep(2000);

  const sample = async () => {
    const rss: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < p.samples; i++) {
      if (i > 0) await sleep(500);
      await fullGc();
      const s = await scrape(url);
      rss.push(metric(s, "process_resident_memory_bytes"));
      heap.push(metric(s, "nodejs_heap_size_used_bytes"));
    }
    return { rss: median(rss), heap: median(heap), rssSamples: rss, heapSamples: heap };
  };

  const before = await sample();
  log(`memory: connecting ${p.sockets} idle authenticated sockets to node 0`);
  const specs: SocketSpec[] = Array.from({ length: p.sockets }, (_, i) => ({ url, token: tokens[i % tokens.length]!, node: 0 }));
  const t0 = performance.now();
  const sockets = await openMany(specs, params.connectConcurrency);
  const connectMs = performance.now() - t0;
  await waitFor(`${p.sockets} sockets on node 0`, async () => (await connectedOn(url)) === p.sockets, 15_000);
  await sleep(p.settleMs);
  const after = await sample();
  const serverCount = await connectedOn(url);
  check("memory: every idle socket still connected on node 0", serverCount === p.sockets, `${serverCount}/${p.sockets}`);

  closeAll(sockets);
  await waitFor("memory sockets gone on node 0", async () => (await connectedOn(url)) === 0, 15_000);
  const kb = (bytes: number) => bytes / 1024;
  return {
    node: 0,
    sockets: p.sockets,
    afterFullGc: gcProbe,
    connectMs: ms(connectMs),
    rssBeforeMiB: round(before.rss / 2 ** 20, 1),
    rssAfterMiB: round(after.rss / 2 ** 20, 1),
    heapUsedBeforeMiB: round(before.heap / 2 ** 20, 1),
    heapUsedAfterMiB: round(after.heap / 2 ** 20, 1),
    rssPerSocketKB: round(kb(after.rss - before.rss) / p.sockets, 1),
    heapPerSocketKB: round(kb(after.heap - before.heap) / p.sockets, 1),
    samples: { before, after },
  };
}

// ---------------------------------------------------------------- 1. propagation

async function benchPropagation(urls: string[], adminToken: string) {
  const p = params.propagation;
  const sendToLast: number[] = [];
  const ackToLast: number[] = [];
  const requestMs: number[] = [];
  const sameNode: number[] = [];
  const otherNodes: number[] = [];
  const fail = { non202: 0, timeouts: 0, missingRevoked: 0, wrongReason: 0, notServerDisconnect: 0 };
  let socketsChecked = 0;
  let revokedOk = 0;
  let kickNo = 0;

  while (kickNo < p.kicks) {
    const n = Math.min(p.usersPerBatch, p.kicks - kickNo);
    const users = await mapLimit(Array.from({ length: n }), 10, (_, i) => guest(urls[i % urls.length]!));
    const specs: SocketSpec[] = users.flatMap((u) => urls.map((url, node) => ({ url, token: u.accessToken, node })));
    const sockets = await openMany(specs, params.connectConcurrency);
    log(`propagation: ${n} users x ${urls.length} sockets ready; kicking ${kickNo + 1}..${kickNo + n}`);
    await sleep(300);

    for (let ui = 0; ui < users.length; ui++, kickNo++) {
      const user = users[ui]!;
      const mine = sockets.slice(ui * urls.length, (ui + 1) * urls.length);
      const via = kickNo % urls.length;
      const t0 = performance.now();
      const r = await call(urls[via]!, "POST", `/admin/users/${user.user.id}/kick`, { token: adminToken, body: { reason: "bench" } });
      const t2xx = performance.now();
      if (r.status !== 202) {
        fail.non202++;
        log(`kick answered ${r.status}: ${r.text.slice(0, 200)}`);
      }
      try {
        await withTimeout(Promise.all(mine.map((s) => s.gone)), p.timeoutMs, "kick");
      } catch {
        fail.timeouts++;
        closeAll(mine);
        continue;
      }
      const last = Math.max(...mine.map((s) => s.disconnectedAt!));
      sendToLast.push(last - t0);
      ackToLast.push(last - t2xx);
      requestMs.push(t2xx - t0);
      for (const s of mine) {
        socketsChecked++;
        (s.node === via ? sameNode : otherNodes).push(s.disconnectedAt! - t0);
        const got = s.revocations[0];
        if (!got || !s.toldWhy) fail.missingRevoked++;
        else if (got.reason !== "kicked") fail.wrongReason++;
        else revokedOk++;
        if (s.disconnectReason !== "io server disconnect") fail.notServerDisconnect++;
      }
    }
    closeAll(sockets);
  }

  const measured = sendToLast.length;
  check(`propagation: >= 200 kicks measured`, measured >= Math.min(200, p.kicks), `${measured}/${p.kicks}`);
  check(
    "propagation: every socket got session:revoked {kicked} before a server disconnect",
    revokedOk === socketsChecked && fail.notServerDisconnect === 0 && socketsChecked === measured * urls.length,
    `${revokedOk}/${socketsChecked} ok; ${JSON.stringify(fail)}`,
  );
  return {
    kicks: p.kicks,
    measured,
    socketsPerKick: urls.length,
    sendToLastDisconnectMs: summaryMs(summarize(sendToLast)),
    ackToLastDisconnectMs: summaryMs(summarize(ackToLast)),
    kickRequestMs: summaryMs(summarize(requestMs)),
    socketOnKickNodeMs: summaryMs(summarize(sameNode)),
    socketOnOtherNodesMs: summaryMs(summarize(otherNodes)),
    sessionRevokedKicked: revokedOk,
    socketsChecked,
    failures: fail,
  };
}

// ---------------------------------------------------------------- 2. handshakes

async function benchHandshake(gh: { url: string; pid?: number }, plain: ChildServer, plainJwt: ChildServer, token: string) {
  const ghUrl = gh.url;
  const p = params.handshake;
  // The check really runs: a bad token is refused by Gatehouse, the plain server takes anything.
  const refused = await handshakeLoad({ url: ghUrl, auth: { token: "not-a-token" }, concurrency: 1, durationMs: 300 });
  check("handshake: Gatehouse refuses a bad token (check is on)", refused.connects === 0 && refused.errors > 0, JSON.stringify(refused.errorKinds));
  const targets = [
    { name: "gatehouse", url: ghUrl, pid: gh.pid, auth: { token } as Record<string, unknown> },
    { name: "plain", url: plain.url, pid: plain.proc.pid, auth: {} as Record<string, unknown> },
    // Reference only (not part of the contract's ratio): plain + one io.use doing the JWT verify.
    { name: "plainJwt", url: plainJwt.url, pid: plainJwt.proc.pid, auth: { token } as Record<string, unknown> },
  ];
  const acc = new Map<string, { connects: number; late: number; errors: number; elapsedMs: number; cpuMs: number; perRound: number[]; latencies: number[]; errorKinds: Record<string, number> }>();
  for (const t of targets) acc.set(t.name, { connects: 0, late: 0, errors: 0, elapsedMs: 0, cpuMs: 0, perRound: [], latencies: [], errorKinds: {} });
  const okBefore = sumSeries(await scrape(ghUrl), "gatehouse_handshakes_total", 'result="ok"');
  let ghCounted = 0;

  for (let round = 0; round < p.rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      log(`handshake: round ${round + 1}/${p.rounds} ${t.name} (${p.concurrency} loops, ${p.durationMs} ms)`);
      const warm = await handshakeLoad({ url: t.url, auth: t.auth, concurrency: p.concurrency, durationMs: round === 0 ? p.warmupMs : p.laterWarmupMs });
      const m = await withServerCpu(t.pid, () => handshakeLoad({ url: t.url, auth: t.auth, concurrency: p.concurrency, durationMs: p.durationMs }));
      const r: HandshakeLoadResult = m.result;
      if (t.name === "gatehouse") ghCounted += warm.connects + r.connects;
      const a = acc.get(t.name)!;
      a.connects += r.connects;
      a.perRound.push(round1(r.connects / (r.elapsedMs / 1000)));
      a.late += r.late;
      a.cpuMs += m.serverCpuMs ?? Number.NaN;
      a.errors += r.errors;
      a.elapsedMs += r.elapsedMs;
      for (const x of r.latencies) a.latencies.push(x);
      for (const [k, v] of Object.entries(r.errorKinds)) a.errorKinds[k] = (a.errorKinds[k] ?? 0) + v;
      await sleep(500);
    }
  }
  const okAfter = sumSeries(await scrape(ghUrl), "gatehouse_handshakes_total", 'result="ok"');
  const out: Record<string, unknown> = {};
  for (const [name, a] of acc) {
    const lat = summarize(a.latencies);
    out[name] = {
      connects: a.connects,
      errors: a.errors,
      errorKinds: a.errorKinds,
      seconds: round(a.elapsedMs / 1000, 2),
      connectsPerSec: round(a.connects / (a.elapsedMs / 1000), 1),
      perRoundConnectsPerSec: a.perRound,
      latencyMs: summaryMs(lat),
      // Server CPU (all threads of that one process) per connect+disconnect, from /proc: less sensitive than rates to other load on the machine.
      serverCpuUsPerConnect: round((a.cpuMs * 1000) / (a.connects + a.late), 1),
    };
    check(`handshake: ${name} had no refused handshakes`, a.errors === 0 && a.connects > 0, `${a.connects} ok, ${a.errors} errors ${JSON.stringify(a.errorKinds)}`);
  }
  const rate = (name: string) => {
    const a = acc.get(name)!;
    return a.connects / (a.elapsedMs / 1000);
  };
  const cpuPer = (name: string) => {
    const a = acc.get(name)!;
    return a.cpuMs / (a.connects + a.late);
  };
  // The node counted an admitted handshake (full check passed) for every connect we saw, and maybe a few that finished after a window.
  check("handshake: Gatehouse counted every admitted handshake", okAfter - okBefore >= ghCounted, `server ${okAfter - okBefore}, client ${ghCounted}`);
  return {
    concurrency: p.concurrency,
    secondsPerServer: round((p.rounds * p.durationMs) / 1000, 1),
    ...out,
    serverAdmittedDuringRun: okAfter - okBefore,
    ratioGatehouseToPlain: round(rate("gatehouse") / rate("plain"), 3),
    ratioGatehouseToPlainPerRound: perRoundRatios(acc.get("gatehouse")!.perRound, acc.get("plain")!.perRound),
    ratioPlainJwtToPlain: round(rate("plainJwt") / rate("plain"), 3),
    cpuRatioGatehouseToPlain: round(cpuPer("plain") / cpuPer("gatehouse"), 3),
  };
}

// ---------------------------------------------------------------- 3. HTTP

async function benchHttp(gh: { url: string; pid?: number }, naive: ChildServer, token: string, blacklistedToken: string) {
  const ghUrl = gh.url;
  const naiveUrl = naive.url;
  const p = params.http;
  const bearer = { authorization: `Bearer ${token}` };
  // Same answer from both /me; both refuse a bad token; the baseline really reads Redis (blacklisted jti refused).
  const [ghMe, naiveMe, ghBad, naiveBad, naiveBl] = await Promise.all([
    call(ghUrl, "GET", "/me", { token }),
    call(naiveUrl, "GET", "/me", { token }),
    call(ghUrl, "GET", "/me", { token: token + "x" }),
    call(naiveUrl, "GET", "/me", { token: token + "x" }),
    call(naiveUrl, "GET", "/me", { token: blacklistedToken }),
  ]);
  check("http: /me answers the same JSON on Gatehouse and the naive baseline", ghMe.status === 200 && ghMe.text === naiveMe.text, `${ghMe.text} vs ${naiveMe.text}`);
  check("http: both refuse a bad token", ghBad.status === 401 && naiveBad.status === 401, `${ghBad.status} / ${naiveBad.status}`);
  check("http: naive baseline refuses a blacklisted jti (it does read Redis)", naiveBl.status === 401, `${naiveBl.status} ${naiveBl.text}`);

  const targets = [
    { name: "gatehouseHealthz", label: "Gatehouse GET /healthz (no auth)", base: ghUrl, pid: gh.pid, path: "/healthz", headers: {} as Record<string, string> },
    { name: "gatehouseMe", label: "Gatehouse GET /me (Bearer, full check)", base: ghUrl, pid: gh.pid, path: "/me", headers: bearer },
    { name: "naiveMe", label: "naive baseline GET /me (JWT + Redis GET)", base: naiveUrl, pid: naive.proc.pid, path: "/me", headers: bearer },
    // Reference only: the baseline's bare express floor, to separate middleware weight from auth cost.
    { name: "naiveHealthz", label: "naive baseline GET /healthz (bare express)", base: naiveUrl, pid: naive.proc.pid, path: "/healthz", headers: {} as Record<string, string> },
  ];
  const acc = new Map<string, { ok: number; late: number; errors: number; elapsedMs: number; cpuMs: number; redisCpuMs: number; perRound: number[]; latencies: number[]; errorKinds: Record<string, number> }>();
  for (const t of targets) acc.set(t.name, { ok: 0, late: 0, errors: 0, elapsedMs: 0, cpuMs: 0, redisCpuMs: 0, perRound: [], latencies: [], errorKinds: {} });
  for (let round = 0; round < p.rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      log(`http: round ${round + 1}/${p.rounds} ${t.label} (${p.concurrency} conns, ${p.durationMs} ms)`);
      await httpLoad({ base: t.base, path: t.path, headers: t.headers, concurrency: p.concurrency, durationMs: round === 0 ? p.warmupMs : p.laterWarmupMs });
      const m = await withServerCpu(t.pid, () => httpLoad({ base: t.base, path: t.path, headers: t.headers, concurrency: p.concurrency, durationMs: p.durationMs }));
      const r: HttpLoadResult = m.result;
      const a = acc.get(t.name)!;
      a.ok += r.ok;
      a.perRound.push(round1(r.ok / (r.elapsedMs / 1000)));
      a.late += r.late;
      a.cpuMs += m.serverCpuMs ?? Number.NaN;
      a.redisCpuMs += m.redisCpuMs ?? Number.NaN;
      a.errors += r.errors;
      a.elapsedMs += r.elapsedMs;
      for (const x of r.latencies) a.latencies.push(x);
      for (const [k, v] of Object.entries(r.errorKinds)) a.errorKinds[k] = (a.errorKinds[k] ?? 0) + v;
      await sleep(300);
    }
  }
  // One connection, one request at a time: what a single request costs in wall time (the naive
  // baseline's Redis round trip shows here; under load it hides behind concurrency).
  const serial: Record<string, ReturnType<typeof summaryMs>> = {};
  for (const t of targets) {
    await httpLoad({ base: t.base, path: t.path, headers: t.headers, concurrency: 1, durationMs: 200 });
    const r = await httpLoad({ base: t.base, path: t.path, headers: t.headers, concurrency: 1, durationMs: p.serialMs });
    serial[t.name] = summaryMs(summarize(r.latencies));
    if (r.errors > 0) check(`http: ${t.label} answered only 200s one at a time`, false, JSON.stringify(r.errorKinds));
  }
  const out: Record<
    string,
    {
      label: string;
      requests: number;
      errors: number;
      errorKinds: Record<string, number>;
      reqPerSec: number;
      perRoundReqPerSec: number[];
      latencyMs: ReturnType<typeof summaryMs>;
      serverCpuUsPerReq: number;
      redisCpuUsPerReq: number;
      serialLatencyMs: ReturnType<typeof summaryMs>;
    }
  > = {};
  for (const t of targets) {
    const a = acc.get(t.name)!;
    const served = a.ok + a.late;
    out[t.name] = {
      label: t.label,
      requests: a.ok,
      errors: a.errors,
      errorKinds: a.errorKinds,
      reqPerSec: round(a.ok / (a.elapsedMs / 1000), 1),
      perRoundReqPerSec: a.perRound,
      latencyMs: summaryMs(summarize(a.latencies)),
      // CPU of the serving process per request (and of redis-server over the same windows), from /proc.
      serverCpuUsPerReq: round((a.cpuMs * 1000) / served, 1),
      redisCpuUsPerReq: round((a.redisCpuMs * 1000) / served, 1),
      serialLatencyMs: serial[t.name]!,
    };
    check(`http: ${t.label} answered only 200s`, a.errors === 0 && a.ok > 0, `${a.ok} ok, ${a.errors} errors ${JSON.stringify(a.errorKinds)}`);
  }
  const micro = checkMicro(quick ? 300 : 1000);
  check("http: the in-process check accepts a fresh token", micro.ok);
  return {
    concurrency: p.concurrency,
    secondsPerTarget: round((p.rounds * p.durationMs) / 1000, 1),
    checkInProcess: micro,
    ...out,
    ratioMeToHealthz: round(out.gatehouseMe!.reqPerSec / out.gatehouseHealthz!.reqPerSec, 3),
    ratioMeToHealthzPerRound: perRoundRatios(acc.get("gatehouseMe")!.perRound, acc.get("gatehouseHealthz")!.perRound),
    ratioMeToNaive: round(out.gatehouseMe!.reqPerSec / out.naiveMe!.reqPerSec, 3),
    ratioMeToNaivePerRound: perRoundRatios(acc.get("gatehouseMe")!.perRound, acc.get("naiveMe")!.perRound),
    ratioNaiveMeToNaiveHealthz: round(out.naiveMe!.reqPerSec / out.naiveHealthz!.reqPerSec, 3),
    // Same comparisons by server CPU per request (higher = cheaper for the ratio's numerator); naive includes redis-server.
    cpuRatioMeToHealthz: round(out.gatehouseHealthz!.serverCpuUsPerReq / out.gatehouseMe!.serverCpuUsPerReq, 3),
    cpuRatioMeToNaive: round((out.naiveMe!.serverCpuUsPerReq + out.naiveMe!.redisCpuUsPerReq) / out.gatehouseMe!.serverCpuUsPerReq, 3),
  };
}

// ---------------------------------------------------------------- 4. mass revocation

async function benchMass(urls: string[], adminToken: string) {
  const p = params.mass;
  const users = await mapLimit(Array.from({ length: p.users }), 10, (_, i) => guest(urls[i % urls.length]!));
  const specs: SocketSpec[] = Array.from({ length: p.sockets }, (_, i) => ({ url: urls[i % urls.length]!, token: users[i % users.length]!.accessToken, node: i % urls.length }));
  log(`mass: connecting ${p.sockets} sockets over ${urls.length} nodes (${p.users} users)`);
  const tc = performance.now();
  const sockets = await openMany(specs, params.connectConcurrency);
  const connectMs = performance.now() - tc;
  const serverCounts = await Promise.all(urls.map(connectedOn));
  const total = serverCounts.reduce((a, b) => a + b, 0);
  check("mass: every socket is live on the nodes before revoke-all", total === p.sockets, `nodes report ${serverCounts.join(" + ")} = ${total}`);
  await sleep(2000);

  const lagMax = (s: Scrape) => metric(s, "nodejs_eventloop_lag_max_seconds") * 1000;
  // Idle floor: the same scrape-window-scrape with nothing happening (the histogram has a 10 ms resolution).
  await Promise.all(urls.map(scrape));
  await sleep(p.idleWindowMs);
  const idle = (await Promise.all(urls.map(scrape))).map(lagMax);

  log(`mass: POST /admin/revoke-all with ${total} live sockets`);
  await Promise.all(urls.map(scrape)); // resets each node's max-lag histogram
  const pids = cluster!.nodes.map((n) => n.proc.pid);
  const schedBefore = pids.map(schedStat);
  const t0 = performance.now();
  const r = await call(urls[0]!, "POST", "/admin/revoke-all", { token: adminToken });
  const t2xx = performance.now();
  check("mass: revoke-all answered 202", r.status === 202, `${r.status} ${r.text.slice(0, 200)}`);
  let timedOut = false;
  try {
    await withTimeout(Promise.all(sockets.map((s) => s.gone)), p.timeoutMs, "revoke-all");
  } catch {
    timedOut = true;
  }
  const gone = sockets.filter((s) => s.disconnectedAt !== null);
  const times = gone.map((s) => s.disconnectedAt! - t0);
  await sleep(300);
  const afterScrapes = await Promise.all(urls.map(scrape));
  const windowMs = performance.now() - t0;
  // Each node's main (event-loop) thread over the same window: time on a CPU, and time runnable
  // but waiting for one. On a machine with fewer cores than busy processes, a lag figure can be
  // mostly waiting, which the node did not cause.
  const sched = pids.map((pid, i) => {
    const a = schedBefore[i];
    const b = schedStat(pid);
    return a && b ? { onCpuMs: ms((b.onCpuNs - a.onCpuNs) / 1e6), waitingForCpuMs: ms((b.waitNs - a.waitNs) / 1e6) } : null;
  });
  const stall = afterScrapes.map(lagMax);
  const leftOnNodes = afterScrapes.map((s) => metric(s, "gatehouse_connected_sockets"));
  const revokedAll = sockets.filter((s) => s.toldWhy && s.revocations[0]?.reason === "revoked_all").length;
  const reasons: Record<string, number> = {};
  for (const s of sockets) reasons[s.disconnectReason ?? "still connected"] = (reasons[s.disconnectReason ?? "still connected"] ?? 0) + 1;
  const perNodeLast = urls.map((_, n) => {
    const t = sockets.filter((s) => s.node === n && s.disconnectedAt !== null).map((s) => s.disconnectedAt! - t0);
    return ms(t.length ? Math.max(...t) : Number.NaN);
  });
  check("mass: every socket gone", !timedOut && gone.length === p.sockets && leftOnNodes.every((x) => x === 0), `${gone.length}/${p.sockets} client-side, nodes left ${leftOnNodes.join("/")}`);
  check("mass: every socket got session:revoked {revoked_all} first", revokedAll === p.sockets, `${revokedAll}/${p.sockets}`);
  closeAll(sockets);

  // revoke-all killed the admin token too: it must be refused now, and a fresh login must work at once.
  const oldAdmin = await call(urls[1]!, "GET", "/me", { token: adminToken });
  check("mass: the pre-revoke-all admin token is refused", oldAdmin.status === 401, String(oldAdmin.status));
  const fresh = await login(urls[1]!, cluster!.admin.username, cluster!.admin.password);
  const freshMe = await call(urls[2]!, "GET", "/me", { token: fresh.accessToken });
  check("mass: a token issued right after revoke-all works on another node", freshMe.status === 200, String(freshMe.status));

  return {
    sockets: p.sockets,
    users: p.users,
    perNode: serverCounts,
    connectSeconds: round(connectMs / 1000, 2),
    connectsPerSecWhilePreparing: round(p.sockets / (connectMs / 1000), 0),
    requestMs: ms(t2xx - t0),
    firstDisconnectMs: ms(times.length ? Math.min(...times) : Number.NaN),
    allGoneMs: ms(times.length ? Math.max(...times) : Number.NaN),
    lastDisconnectPerNodeMs: perNodeLast,
    disconnectTimesMs: summaryMs(summarize(times)),
    sessionRevokedRevokedAll: revokedAll,
    disconnectReasons: reasons,
    eventLoopLagMaxMs: { perNode: stall.map((x) => ms(x)), worst: ms(Math.max(...stall)) },
    windowMs: ms(windowMs),
    nodeMainThread: sched,
    idleEventLoopLagMaxMs: { perNode: idle.map((x) => ms(x)), worst: ms(Math.max(...idle)), windowMs: p.idleWindowMs },
  };
}

// ---------------------------------------------------------------- table

type Row = [string, string];
function table(machine: MachineInfo, res: Record<string, any>): string {
  const lines: string[] = [];
  const cpuOf = (name: string): Row[] => {
    const c = res.cpu?.[name] as CpuUsage | null | undefined;
    if (!c) return [];
    const warn = c.othersPct + c.stealPct >= 10 ? "  << machine busy with other work: figure disturbed" : "";
    return [["CPU during phase: bench+servers / others / steal", `${c.oursPct}% / ${c.othersPct}% / ${c.stealPct}% of ${machine.cores} cores${warn}`]];
  };
  let phaseName = "";
  const sec = (title: string, rows: Row[]) => {
    lines.push(title);
    for (const [k, v] of [...rows, ...cpuOf(phaseName)]) lines.push(`  ${k.padEnd(54)} ${v}`);
  };
  lines.push(`Gatehouse benchmarks  ${machine.date}`);
  lines.push(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, Node ${machine.node}, redis-server ${machine.redisServer}, ${machine.os}`);
  lines.push(
    `cluster: ${params.nodes} nodes + own redis-server; clients and servers share the same ${machine.cores} cores${quick ? "  [BENCH_QUICK: smoke-run sizes]" : ""}${only ? `  [BENCH_ONLY: ${only.join(",")}]` : ""}`,
  );
  lines.push("");
  const pr = res.propagation;
  if (pr) {
    phaseName = "propagation";
    const a = pr.sendToLastDisconnectMs;
    const b = pr.ackToLastDisconnectMs;
    sec(`1. revocation propagation: admin kick -> user's ${pr.socketsPerKick} sockets (one per node) disconnected, n=${pr.measured} kicks`, [
      ["kick sent -> last disconnect (ms)", `p50 ${fmt(a.p50)}  p99 ${fmt(a.p99)}  max ${fmt(a.max)}`],
      ["kick 2xx -> last disconnect (ms; < 0: before the 2xx)", `p50 ${fmt(b.p50)}  p99 ${fmt(b.p99)}  max ${fmt(b.max)}`],
      ["kick request round trip (ms)", `p50 ${fmt(pr.kickRequestMs.p50)}  p99 ${fmt(pr.kickRequestMs.p99)}`],
      ["socket on the kicking node / other nodes, p50 (ms)", `${fmt(pr.socketOnKickNodeMs.p50)} / ${fmt(pr.socketOnOtherNodesMs.p50)}`],
      ["session:revoked {kicked} received", `${pr.sessionRevokedKicked}/${pr.socketsChecked}  failures ${JSON.stringify(pr.failures)}`],
    ]);
  }
  const hs = res.handshake;
  const hsRow = (x: any): string => `${fmtInt(x.connectsPerSec)}  (p50 ${fmt(x.latencyMs.p50)} ms, p99 ${fmt(x.latencyMs.p99)} ms; server CPU ${fmtInt(x.serverCpuUsPerConnect)} µs/connect)`;
  if (hs) {
    phaseName = "handshake";
    sec(`2. handshake rate (${hs.concurrency} connect/disconnect loops, websocket, ${hs.secondsPerServer} s each)`, [
      ["Gatehouse node, full check (connects/s)", hsRow(hs.gatehouse)],
      ["plain socket.io, auth off (connects/s)", hsRow(hs.plain)],
      ["ratio Gatehouse / plain", `${fmt(hs.ratioGatehouseToPlain, 3)}  (${spread(hs.ratioGatehouseToPlainPerRound)}; by server CPU per connect: ${fmt(hs.cpuRatioGatehouseToPlain, 3)})`],
      ["  reference: plain + JWT verify in io.use (connects/s)", `${hsRow(hs.plainJwt)}  ratio to plain ${fmt(hs.ratioPlainJwtToPlain, 3)}`],
    ]);
  }
  const h = res.http;
  if (h) {
    phaseName = "http";
    const row = (x: any): string =>
      `${fmtInt(x.reqPerSec)} req/s  (p50 ${fmt(x.latencyMs.p50)} ms, p99 ${fmt(x.latencyMs.p99)} ms; server CPU ${fmtInt(x.serverCpuUsPerReq)} µs/req${x.label.startsWith("naive") && x.label.includes("/me") ? ` + redis ${fmtInt(x.redisCpuUsPerReq)}` : ""})`;
    sec(`3. HTTP request rate (${h.concurrency} keep-alive connections, ${h.secondsPerTarget} s each)`, [
      [h.gatehouseHealthz.label, row(h.gatehouseHealthz)],
      [h.gatehouseMe.label, row(h.gatehouseMe)],
      [h.naiveMe.label, row(h.naiveMe)],
      ["ratio /me / /healthz (Gatehouse)", `${fmt(h.ratioMeToHealthz, 3)}  (${spread(h.ratioMeToHealthzPerRound)}; by server CPU per request: ${fmt(h.cpuRatioMeToHealthz, 3)})`],
      ["ratio Gatehouse /me / naive /me", `${fmt(h.ratioMeToNaive, 3)}  (${spread(h.ratioMeToNaivePerRound)}; by server CPU per request, naive incl. redis: ${fmt(h.cpuRatioMeToNaive, 3)})`],
      ["  reference: " + h.naiveHealthz.label, row(h.naiveHealthz)],
      ["  reference: ratio naive /me / naive /healthz", fmt(h.ratioNaiveMeToNaiveHealthz, 3)],
      ["  reference: the check alone, in-process (µs/call)", `${fmt(h.checkInProcess.checkUs)}  (of which jsonwebtoken verify ~${fmt(h.checkInProcess.jwtVerifyUs)})`],
      [
        "one request at a time, p50 ms: GH healthz / GH me / naive me",
        `${fmt(h.gatehouseHealthz.serialLatencyMs.p50, 3)} / ${fmt(h.gatehouseMe.serialLatencyMs.p50, 3)} / ${fmt(h.naiveMe.serialLatencyMs.p50, 3)}  (p99 ${fmt(h.gatehouseHealthz.serialLatencyMs.p99, 3)} / ${fmt(h.gatehouseMe.serialLatencyMs.p99, 3)} / ${fmt(h.naiveMe.serialLatencyMs.p99, 3)})`,
      ],
    ]);
  }
  const m = res.mass;
  if (m) {
    phaseName = "mass";
    sec(`4. mass revocation: POST /admin/revoke-all with ${m.sockets} live sockets (${m.perNode.join(" / ")} per node)`, [
      ["revoke-all request round trip (ms)", fmt(m.requestMs)],
      ["first / last client disconnect after the request (ms)", `${fmt(m.firstDisconnectMs)} / ${fmt(m.allGoneMs)}`],
      ["last disconnect per node (ms)", m.lastDisconnectPerNodeMs.map((x: number) => fmt(x)).join(" / ")],
      ["session:revoked {revoked_all} received", `${m.sessionRevokedRevokedAll}/${m.sockets}`],
      ["worst event-loop lag on any node (ms)", `${fmt(m.eventLoopLagMaxMs.worst)}  (per node ${m.eventLoopLagMaxMs.perNode.map((x: number) => fmt(x)).join(" / ")})`],
      ["  same metric, idle window, for reference (ms)", fmt(m.idleEventLoopLagMaxMs.worst)],
      [
        `node main threads over the ${fmt(m.windowMs / 1000, 1)} s window: on CPU / waiting for a CPU (ms)`,
        m.nodeMainThread.map((x: { onCpuMs: number; waitingForCpuMs: number } | null) => (x ? `${fmt(x.onCpuMs, 0)} / ${fmt(x.waitingForCpuMs, 0)}` : "n/a")).join(", "),
      ],
    ]);
  }
  const mem = res.memory;
  if (mem) {
    phaseName = "memory";
    sec(`5. memory per idle authenticated socket (${mem.sockets} sockets on node 0${mem.afterFullGc ? ", heap after a full GC" : ""})`, [
      ["RSS per socket (KB)", `${fmt(mem.rssPerSocketKB, 1)}  (${mem.rssBeforeMiB} -> ${mem.rssAfterMiB} MiB)`],
      ["V8 heap used per socket (KB)", `${fmt(mem.heapPerSocketKB, 1)}  (${mem.heapUsedBeforeMiB} -> ${mem.heapUsedAfterMiB} MiB)`],
    ]);
  }
  const failed = checks.filter((c) => !c.ok);
  lines.push("");
  lines.push(failed.length === 0 ? `checks: all ${checks.length} passed` : `checks: ${failed.length} of ${checks.length} FAILED: ${failed.map((c) => `${c.name} (${c.detail})`).join("; ")}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const machine = machineInfo();
  const needFds = Math.max(params.mass.sockets, params.memory.sockets) + 1000;
  if (machine.fdLimit !== null && machine.fdLimit < needFds) {
    console.error(
      `open-files limit too low: ulimit -n is ${machine.fdLimit}, the bench needs at least ${needFds} ` +
        `(${params.mass.sockets} client sockets in this process, as many server sockets spread over the nodes). ` +
        `Raise it in this shell first (e.g. \`ulimit -n 20000\`) or set BENCH_MASS_SOCKETS lower (the contract asks for >= 5000).`,
    );
    return 2;
  }
  log(`starting a ${params.nodes}-node cluster with its own redis-server`);
  cluster = await startLocalCluster({ nodes: params.nodes, env: params.clusterEnv });
  const urls = cluster.nodes.map((n) => n.url);
  await waitFor("every node ready", async () => (await Promise.all(urls.map((u) => call(u, "GET", "/readyz")))).every((r) => r.status === 200), 15_000);
  const admin = await login(urls[0]!, cluster.admin.username, cluster.admin.password);

  // The load user (HTTP and handshakes), and one whose jti the naive baseline must find blacklisted.
  const loadUser = await guest(urls[0]!);
  const blUser = await guest(urls[0]!);
  redisPid = findDescendant("redis-server");
  redisClient = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
  redisClient.on("error", () => undefined);
  await redisClient.set(`bl:${jtiOf(blUser.accessToken)}`, "1", "EX", 3600);

  log("starting the baseline servers (plain socket.io, naive express + JWT + Redis GET)");
  [plainIo, plainJwtIo, naiveHttp] = await Promise.all([
    startChildServer("plain-io", "plain-io", { PORT: "0" }),
    startChildServer("plain-io-jwt", "plain-io", { PORT: "0", JWT_SECRET: cluster.secret }),
    startChildServer("naive-http", "naive-http", {
      PORT: "0",
      REDIS_URL: cluster.redis.url,
      JWT_SECRET: cluster.secret,
      BENCH_USERS: JSON.stringify({ [loadUser.user.id]: loadUser.user.username }),
    }),
  ]);

  const results: Record<string, unknown> = {};
  const cpu: Record<string, CpuUsage | null> = {};
  const phase = async (name: string, run: () => Promise<unknown>) => {
    if (!params.phases.includes(name)) return;
    const start = cpuSnapshot();
    results[name] = await run();
    cpu[name] = cpuSince(start);
    const c = cpu[name];
    if (c) log(`${name}: CPU bench ${c.oursPct}%, other processes ${c.othersPct}%, steal ${c.stealPct}% of the machine`);
  };
  await phase("memory", () => benchMemory(cluster!.nodes[0]!));
  await phase("propagation", () => benchPropagation(urls, admin.accessToken));
  await phase("handshake", () => benchHandshake({ url: urls[0]!, pid: cluster!.nodes[0]!.proc.pid }, plainIo!, plainJwtIo!, loadUser.accessToken));
  await phase("http", () => benchHttp({ url: urls[0]!, pid: cluster!.nodes[0]!.proc.pid }, naiveHttp!, loadUser.accessToken, blUser.accessToken));
  await phase("mass", () => benchMass(urls, admin.accessToken));
  results.cpu = cpu;

  const nodeExits = cluster.nodes.filter((n) => n.proc.exitCode !== null || n.proc.signalCode !== null);
  check("no node died during the run", nodeExits.length === 0, nodeExits.map((n) => n.nodeId).join(", "));

  const text = table(machine, results as Record<string, any>);
  console.log(`\n${text}\n`);
  const report = {
    machine,
    params,
    durationSeconds: round((performance.now() - t0Run) / 1000, 1),
    loadAvgAtEnd: os.loadavg().map((x) => round(x, 2)),
    results,
    checks,
    table: text.split("\n"),
  };
  const dir = path.join(process.cwd(), "bench", "results");
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(report, null, 2);
  writeFileSync(path.join(dir, "latest.json"), json);
  writeFileSync(path.join(dir, `run-${machine.date.replace(/[:.]/g, "-")}.json`), json);
  log(`wrote bench/results/latest.json`);
  return checks.every((c) => c.ok) ? 0 : 1;
}

const watchdog = setTimeout(() => {
  log("the bench took over 10 minutes: giving up");
  void shutdownAndExit(1);
}, 10 * 60_000);
watchdog.unref();

main().then(
  (code) => shutdownAndExit(code),
  (err: unknown) => {
    if (exiting) return; // interrupted: whatever failed after that is expected
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    void shutdownAndExit(1);
  },
);
