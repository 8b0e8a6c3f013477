/** What the numbers were measured on. */
import { execFileSync } from "node:child_process";
import os from "node:os";

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  ramGiB: number;
  node: string;
  redisServer: string;
  os: string;
  date: string;
  fdLimit: number | null;
  /** 1/5/15-minute load averages when the bench started (others may share the machine) */
  loadAvgAtStart: number[];
}

/** The soft open-files limit this process (and its children) run under. */
export function fdLimit(): number | null {
  try {
    const out = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim();
    return out === "unlimited" ? Number.POSITIVE_INFINITY : Number(out);
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  let redisServer = "unknown";
  try {
    const out = execFileSync(process.env.REDIS_SERVER_BIN || "redis-server", ["--version"], { encoding: "utf8" });
    redisServer = /v=(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    // reported as unknown; the cluster start fails with its own message
  }
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    redisServer,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    fdLimit: fdLimit(),
    loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
