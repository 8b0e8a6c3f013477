/** The soak's terminal output: a progress line, and the final table. */
import type { SoakProgress, SoakResult } from "./soak";

export function formatProgress(p: SoakProgress): string {
  return [
    `${String(Math.round(p.elapsedSec)).padStart(4)} s`,
    `connected ${p.connected}`,
    `revoked ${p.issued} (failed ${p.failed})`,
    `dropped ok ${p.droppedRight}`,
    `missed ${p.missed}`,
    `wrongly dropped ${p.wronglyDropped}`,
    `admitted ${p.admitted}`,
    `p99 ${p.p99Ms} ms`,
    `${p.msgsPerSec} msgs/s`,
    `harness lag p99 ${p.lagP99Ms} ms`,
  ].join(" · ");
}

const mb = (b: number | null) => (b === null ? "n/a" : `${(b / 1048576).toFixed(1)} MB`);

export function formatResult(r: SoakResult): string {
  const s = r.settings;
  const rows: [string, string][] = [
    ["settings", `${s.bots} players, ${s.rate} revocations/s, ${s.durationSec} s, ${s.nodes} nodes, access lifetime ${s.accessTtlSec} s, faults: ${s.faults.join(", ") || "none"}`],
    ["machine", `${r.machine.cores} cores, node ${r.machine.node}; harness event-loop p99 ${r.harness.eventLoopP99Ms} ms, max ${r.harness.eventLoopMaxMs} ms`],
    ["revocations issued", `${r.revocations.issued} (${Object.entries(r.revocations.byKind).map(([k, n]) => `${k} ${n}`).join(", ")}); unbans ${r.revocations.unbans}`],
    ["calls failed (not counted)", `${r.revocations.failed}${r.revocations.failed ? ` (${Object.entries(r.revocations.failedByKind).map(([k, n]) => `${k} ${n}`).join(", ")})` : ""}`],
    ["covered connections", String(r.covered)],
    ["dropped, right reason", String(r.droppedRight)],
    ["MISSED", String(r.missed)],
    ["WRONGLY DROPPED", String(r.wronglyDropped)],
    ["ADMITTED after revocation", `${r.admitted} of ${r.admissionChecks} attempts`],
    ["revoke -> disconnect", `p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms (${r.latencyMs.count} drops; from the call sent to the client's disconnect)`],
    ["excused by faults", `${r.lostToFault} covered on a killed node, ${r.transportClosesInFaults} transport closes, ${r.droppedByFailedCall} dropped by a failed call, ${r.droppedLateConnection} reconnected during the call then dropped with its reason`],
    ["expired (late bot refresh)", `${r.expiredUnrenewed} uncovered, ${r.expiredBeforeVerdict} covered (token_expired at the token's exp: the harness renewed too late; not judged)`],
    ["reuse after a lost refresh", `${r.reuseAfterLostRefresh} (a bot's refresh got no answer, its retry was taken as reuse: the REFRESH_REUSE_GRACE case)`],
    [
      "traffic",
      `${r.traffic.connects} connects (peak ${r.traffic.peakConnected}), ${r.traffic.httpRefreshes} HTTP refreshes, ${r.traffic.inBandRefreshes} in-band auth:refresh (${r.traffic.inBandRefused} refused), ${r.traffic.chats} chats, ${r.traffic.messages} messages received`,
    ],
    ...r.nodes.map((n): [string, string] => [`heap ${n.nodeId}`, `${mb(n.heapStartBytes)} -> ${mb(n.heapEndBytes)}${n.restarted ? " (restarted by the fault)" : ""}`]),
    [
      "redis keys",
      `${r.redis.keysStart} -> ${r.redis.keysEnd} (marks ${r.redis.marksStart} -> ${r.redis.marksEnd}; ${r.redis.waitedForTtlSec ? `counted ${r.redis.waitedForTtlSec} s after the last revocation` : "counted at once, marks not yet expired"})`,
    ],
    ...r.faults.map((f): [string, string] => [`fault at ${f.atSec} s`, `${f.fault}: ${f.detail}`]),
  ];
  const errors = Object.entries(r.traffic.errors);
  if (errors.length) rows.push(["client-side errors", errors.map(([k, n]) => `${k} ${n}`).join(", ")]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  for (const [name, list] of Object.entries(r.samples)) {
    for (const smp of list) lines.push(`  ${name}: ${JSON.stringify(smp)}`);
  }
  lines.push("", r.ok ? "  PASS: nothing missed, nothing wrongly dropped, nothing admitted" : "  FAIL");
  return lines.join("\n");
}
