/**
 * Who used the CPU during a phase (Linux /proc; null elsewhere): this process
 * and its descendants (nodes, redis-server, baselines) vs everything else on
 * the machine, plus hypervisor steal. The bench shares a small machine; a phase
 * measured while something else was busy says so in the results.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

interface CpuSnapshot {
  total: number;
  busy: number;
  steal: number;
  ours: number;
}

export interface CpuUsage {
  /** % of all cores used by the bench and its child processes */
  oursPct: number;
  /** % of all cores used by other processes */
  othersPct: number;
  /** % of all cores stolen by the hypervisor */
  stealPct: number;
}

function readSystem(): { total: number; busy: number; steal: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { total: user + nice + system + idle + iowait + irq + softirq + steal, busy: user + nice + system + irq + softirq, steal };
}

interface ProcInfo {
  ppid: number;
  comm: string;
  /** utime + stime, clock ticks */
  ticks: number;
  /** cutime + cstime: children this process has reaped (their CPU moves here when they exit) */
  reapedTicks: number;
}

function scanProcs(): Map<number, ProcInfo> {
  const procs = new Map<number, ProcInfo>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const rest = stat.slice(close + 2).split(" ");
      procs.set(Number(name), { ppid: Number(rest[1]), comm: stat.slice(stat.indexOf("(") + 1, close), ticks: Number(rest[11]) + Number(rest[12]), reapedTicks: Number(rest[13]) + Number(rest[14]) });
    } catch {
      // gone meanwhile
    }
  }
  return procs;
}

/** Live descendants of this process (pid -> command name); empty where /proc is missing. */
export function descendants(procs: Map<number, ProcInfo> = safeScan()): Map<number, string> {
  const out = new Map<number, string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of procs) {
      if (!out.has(pid) && (p.ppid === process.pid || out.has(p.ppid))) {
        out.set(pid, p.comm);
        grew = true;
      }
    }
  }
  return out;
}

function safeScan(): Map<number, ProcInfo> {
  try {
    return scanProcs();
  } catch {
    return new Map();
  }
}

/**
 * CPU (clock ticks) of this process and all its descendants, those that exited included (a child
 * started and stopped within a phase, like the mass phase's extra plain servers, was counted as
 * "other processes" once gone).
 */
function readOurs(): number {
  const procs = scanProcs();
  const of = (pid: number) => (procs.get(pid)?.ticks ?? 0) + (procs.get(pid)?.reapedTicks ?? 0);
  let ticks = of(process.pid);
  for (const pid of descendants(procs).keys()) ticks += of(pid);
  return ticks;
}

export function cpuSnapshot(): CpuSnapshot | null {
  try {
    return { ...readSystem(), ours: readOurs() };
  } catch {
    return null;
  }
}

export function cpuSince(start: CpuSnapshot | null): CpuUsage | null {
  const end = cpuSnapshot();
  if (!start || !end) return null;
  const total = end.total - start.total;
  if (total <= 0) return null;
  const ours = end.ours - start.ours;
  const busy = end.busy - start.busy;
  const pct = (x: number) => Math.round((Math.max(0, x) / total) * 1000) / 10;
  return { oursPct: pct(ours), othersPct: pct(busy - ours), stealPct: pct(end.steal - start.steal) };
}

/** Main-thread scheduler stats of a process (/proc/<pid>/schedstat): ns on a CPU, ns runnable but waiting for one. */
export interface SchedStat {
  onCpuNs: number;
  waitNs: number;
}

export function schedStat(pid: number | undefined): SchedStat | null {
  if (pid === undefined) return null;
  try {
    const [on, wait] = readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(/\s+/).map(Number);
    return on === undefined || wait === undefined ? null : { onCpuNs: on, waitNs: wait };
  } catch {
    return null;
  }
}

let ticksPerSec: number | undefined;
function clockTicks(): number {
  if (ticksPerSec === undefined) {
    try {
      ticksPerSec = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSec = 100;
    }
  }
  return ticksPerSec;
}

/** CPU time (user + system, all threads) a process has used so far, in ms; null if unknown. */
export function processCpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / clockTicks();
  } catch {
    return null;
  }
}

/** pid of a descendant of this process whose command name is `comm` (e.g. "redis-server"). */
export function findDescendant(comm: string): number | undefined {
  for (const [pid, name] of descendants()) if (name === comm) return pid;
  return undefined;
}
