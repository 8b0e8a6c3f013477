/**
 * `npm run bench`: the benchmarks of contract section 7, side by side in one
 * run, on a local 3-node cluster with its own redis-server (never the shared
 * one), plus bench-only baseline servers (child processes, bench/baseline/):
 *
 *   1. revocation propagation: admin kick -> the user's sockets on all 3 nodes gone
 *   2. handshake rate: Gatehouse node (full check) vs a plain socket.io server (auth off)
 *   3. HTTP rate: GET /me (Bearer) vs GET /healthz, and vs a naive express + JWT + Redis GET baseline
 *   4. mass revocation: revoke-all with >= 5,000 live sockets; time and worst event-loop stall
 *   5. memory per idle authenticated socket, beside plain socket.io holding the same sockets
 *   6. ban wave: 100 users x 20 sockets banned at once; worst answer delay an innocent player sees
 *   7. Redis commands per steady-state authenticated request (INFO commandstats)
 *
 * One file per phase in bench/phases/, each returning a typed result;
 * bench/phases/report.ts prints the table and builds the flat `summary`.
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
import { Redis } from "ioredis";
import { startLocalCluster, type LocalCluster } from "../scripts/lib/local-cluster";
import { apiAgent, call, guest, login } from "./lib/api";
import { check, checks, elapsedSeconds, gcProbeNodeOptions, jtiOf, log, params, procs, waitFor } from "./lib/context";
import { cpuSince, cpuSnapshot, descendants, findDescendant, type CpuUsage } from "./lib/cpu";
import { machineInfo } from "./lib/machine";
import { startChildServer, type ChildServer } from "./lib/procs";
import { liveSockets } from "./lib/sockets";
import { round, withTimeout } from "./lib/stats";
import { benchBanwave } from "./phases/banwave";
import { benchHandshake } from "./phases/handshake";
import { benchHttp } from "./phases/http";
import { benchMass } from "./phases/mass";
import { benchMemory } from "./phases/memory";
import { benchPropagation } from "./phases/propagation";
import { benchRedisCommands } from "./phases/redis-commands";
import { summary, table } from "./phases/report";

let cluster: LocalCluster | undefined;
let plainIo: ChildServer | undefined;
let plainJwtIo: ChildServer | undefined;
let naiveHttp: ChildServer | undefined;
let redisClient: Redis | undefined;
let cleaning: Promise<void> | undefined;

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
  procs.redisPid = findDescendant("redis-server");
  redisClient = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1 });
  redisClient.on("error", () => undefined);
  await redisClient.set(`bl:${jtiOf(blUser.accessToken)}`, "1", "EX", 3600);

  log("starting the baseline servers (plain socket.io, naive express + JWT + Redis GET)");
  [plainIo, plainJwtIo, naiveHttp] = await Promise.all([
    // The gc probe too: the memory figure compares both sides after a full GC.
    startChildServer("plain-io", "plain-io", { PORT: "0", NODE_OPTIONS: gcProbeNodeOptions }),
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
  const node0 = { url: urls[0]!, pid: cluster.nodes[0]!.proc.pid };
  const c = cluster;
  await phase("propagation", () => benchPropagation(urls, admin.accessToken));
  await phase("handshake", () => benchHandshake(node0, plainIo!, plainJwtIo!, loadUser.accessToken));
  await phase("http", () => benchHttp(node0, naiveHttp!, loadUser.accessToken, blUser.accessToken));
  await phase("redis", () => benchRedisCommands(urls[0]!, loadUser.accessToken, redisClient!));
  await phase("banwave", () => benchBanwave(urls, admin.accessToken));
  // After the rate comparisons: a process that has held 10,000 sockets stays ~5 % slower per
  // request afterwards (measured: /healthz 96 -> 101 µs CPU), and the baselines never held them.
  await phase("memory", () => benchMemory(c.nodes[0]!, plainIo!));
  // Last: revoke-all kills every token issued so far, the admin's included.
  await phase("mass", () =>
    benchMass(
      c.nodes.map((n) => ({ url: n.url, pid: n.proc.pid })),
      { username: c.admin.username, password: c.admin.password, token: admin.accessToken },
      plainIo!,
    ),
  );
  results.cpu = cpu;

  const nodeExits = cluster.nodes.filter((n) => n.proc.exitCode !== null || n.proc.signalCode !== null);
  check("no node died during the run", nodeExits.length === 0, nodeExits.map((n) => n.nodeId).join(", "));

  const text = table(machine, results as Record<string, any>);
  console.log(`\n${text}\n`);
  const report = {
    machine,
    summary: summary(results as Record<string, any>),
    params,
    durationSeconds: round(elapsedSeconds(), 1),
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
