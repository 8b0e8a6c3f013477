/**
 * `npm run soak -- [--bots 2000] [--rate 20] [--duration 120] [--nodes 3] [--fault none]`
 *
 * A bounded soak of a local cluster (its own redis-server + child-process
 * nodes) under players and revocations of every kind. Prints progress, then a
 * table, writes bench/results/soak-latest.json, and exits 0 only with nothing
 * missed, nothing wrongly dropped and no revoked token admitted.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { exitOnHelp, parseCli } from "./lib/cli";
import { FAULTS, runSoak, type Fault } from "./lib/soak";
import { formatProgress, formatResult } from "./lib/soak-report";

const USAGE = `npm run soak -- [options]
  --bots N         players connected at once (default 2000)
  --rate R         revocations per second (default 20)
  --duration S     seconds of steady state (default 120)
  --nodes N        nodes (default 3)
  --fault F        none | ${FAULTS.join(" | ")}; a comma list runs several, spread over the run (default none)
  --access-ttl S   access-token lifetime in seconds (default 30; Redis keys are counted after it)
  --in-room X      share of players in rooms, moving and chatting (default 0.5)
  --revoke-all     end with one revoke-all covering every connection
  --no-wait        count Redis keys at once instead of after the access lifetime
  --out FILE       where to write the JSON result (default bench/results/soak-latest.json)
  --verbose        echo the nodes' logs`;

exitOnHelp(USAGE);
const v = parseCli(
  {
    bots: { type: "string", default: "2000" },
    rate: { type: "string", default: "20" },
    duration: { type: "string", default: "120" },
    nodes: { type: "string", default: "3" },
    fault: { type: "string", default: "none" },
    "access-ttl": { type: "string", default: "30" },
    "in-room": { type: "string", default: "0.5" },
    "revoke-all": { type: "boolean", default: false },
    "no-wait": { type: "boolean", default: false },
    out: { type: "string", default: "bench/results/soak-latest.json" },
    verbose: { type: "boolean", default: false },
  },
  USAGE,
);
const num = (name: string, raw: string, min: number, max = Infinity) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) {
    console.error(`--${name} must be a number from ${min} to ${max} (got "${raw}")\n\n${USAGE}`);
    process.exit(1);
  }
  return n;
};
const faults = v.fault === "none" ? [] : v.fault.split(",").map((f) => f.trim());
for (const f of faults) {
  if (!(FAULTS as readonly string[]).includes(f)) {
    console.error(`--fault: unknown fault "${f}"\n\n${USAGE}`);
    process.exit(1);
  }
}
const bots = Math.floor(num("bots", v.bots, 10));

// Each player is a socket here and one on a node, plus HTTP connections.
const fdLimit = Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
if (Number.isFinite(fdLimit) && fdLimit < bots + 500) {
  console.error(`open-files limit too low: ulimit -n is ${fdLimit}, ${bots} players need at least ${bots + 500}. Raise it first (ulimit -n 20000).`);
  process.exit(1);
}

const tty = process.stderr.isTTY;
const result = await runSoak({
  bots,
  rate: num("rate", v.rate, 0.1),
  durationSec: num("duration", v.duration, 1),
  nodes: Math.floor(num("nodes", v.nodes, 1, 16)),
  faults: faults as Fault[],
  accessTtlSec: Math.floor(num("access-ttl", v["access-ttl"], 5)),
  inRoomShare: num("in-room", v["in-room"], 0, 1),
  revokeAll: v["revoke-all"],
  waitForTtl: !v["no-wait"],
  echo: v.verbose,
  log: (line) => console.error(tty ? `\r\x1b[2K${line}` : line),
  onProgress: (p) => console.error(formatProgress(p)),
});
console.log(`\nGatehouse soak, ${result.startedAt}\n${formatResult(result)}`);
mkdirSync(v.out.replace(/\/[^/]*$/, "") || ".", { recursive: true });
writeFileSync(v.out, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\n  written to ${v.out}`);
process.exit(result.ok ? 0 : 1);
