/** The printed table of a run, and the flat `summary` object of bench/results/latest.json. */
import { checks, only, params, quick } from "../lib/context";
import type { CpuUsage } from "../lib/cpu";
import type { MachineInfo } from "../lib/machine";
import { fmt, fmtInt, round } from "../lib/stats";

const spread = (xs: number[]) => (xs.length ? `rounds ${fmt(Math.min(...xs), 2)}-${fmt(Math.max(...xs), 2)}` : "");

/**
 * One flat object, fixed keys (issue 10), so two runs compare without reading the code.
 * Ratios: Gatehouse over the other for rates; Gatehouse over plain for memory and CPU per socket.
 * A figure whose phase did not run is null.
 */
export interface Summary {
  kick_p50_ms: number | null;
  kick_p99_ms: number | null;
  healthz_ratio_vs_bare_express: number | null;
  me_ratio_vs_healthz: number | null;
  me_ratio_vs_naive: number | null;
  me_cpu_ratio_vs_naive: number | null;
  me_p50_ms: number | null;
  naive_me_p50_ms: number | null;
  handshake_ratio_vs_plain: number | null;
  handshake_cpu_ratio_vs_plain: number | null;
  revoke_all_5k_ms: number | null;
  revoke_all_worst_lag_ms: number | null;
  disconnect_cpu_ratio_vs_plain: number | null;
  banwave_all_gone_ms: number | null;
  banwave_innocent_worst_ms: number | null;
  memory_sockets: number | null;
  memory_heap_ratio_vs_plain: number | null;
  memory_rss_ratio_vs_plain: number | null;
  redis_commands_per_request: number | null;
}

export function summary(res: Record<string, any>): Summary {
  const n = (x: unknown): number | null => (typeof x === "number" && Number.isFinite(x) ? round(x, 3) : null);
  const { propagation: pr, http: h, handshake: hs, mass: m, banwave: bw, memory: mem, redis: rc } = res;
  return {
    kick_p50_ms: n(pr?.sendToLastDisconnectMs.p50),
    kick_p99_ms: n(pr?.sendToLastDisconnectMs.p99),
    healthz_ratio_vs_bare_express: n(h?.ratioHealthzToBareExpress),
    me_ratio_vs_healthz: n(h?.ratioMeToHealthz),
    me_ratio_vs_naive: n(h?.ratioMeToNaive),
    me_cpu_ratio_vs_naive: n(h?.cpuRatioMeToNaive),
    me_p50_ms: n(h?.gatehouseMe.serialLatencyMs.p50),
    naive_me_p50_ms: n(h?.naiveMe.serialLatencyMs.p50),
    handshake_ratio_vs_plain: n(hs?.ratioGatehouseToPlain),
    handshake_cpu_ratio_vs_plain: n(hs?.cpuRatioGatehouseToPlain),
    revoke_all_5k_ms: n(m?.allGoneMs),
    revoke_all_worst_lag_ms: n(m?.eventLoopLagMaxMs.worst),
    disconnect_cpu_ratio_vs_plain: n(m?.cpuRatioToPlainDisconnect),
    banwave_all_gone_ms: n(bw?.allGoneMs),
    banwave_innocent_worst_ms: n(bw?.innocentWorstMs),
    memory_sockets: n(mem?.sockets),
    memory_heap_ratio_vs_plain: n(mem?.heapRatioToPlain),
    memory_rss_ratio_vs_plain: n(mem?.rssRatioToPlain),
    redis_commands_per_request: n(rc?.commandsPerRequest),
  };
}

type Row = [string, string];
export function table(machine: MachineInfo, res: Record<string, any>): string {
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
      ["ratio Gatehouse /healthz / bare express /healthz", `${fmt(h.ratioHealthzToBareExpress, 3)}  (${spread(h.ratioHealthzToBareExpressPerRound)}; by server CPU per request: ${fmt(h.cpuRatioHealthzToBareExpress, 3)})`],
      ["ratio /me / /healthz (Gatehouse)", `${fmt(h.ratioMeToHealthz, 3)}  (${spread(h.ratioMeToHealthzPerRound)}; by server CPU per request: ${fmt(h.cpuRatioMeToHealthz, 3)})`],
      ["ratio Gatehouse /me / naive /me", `${fmt(h.ratioMeToNaive, 3)}  (${spread(h.ratioMeToNaivePerRound)}; by server CPU per request, naive incl. redis: ${fmt(h.cpuRatioMeToNaive, 3)})`],
      [h.naiveHealthz.label, row(h.naiveHealthz)],
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
      ["node CPU per dropped socket vs plain socket.io disconnectSockets (µs)", `${fmt(m.nodeCpuUsPerDroppedSocket, 1)} vs ${fmt(m.plainDisconnect.cpuUsPerSocket, 1)}: ratio ${fmt(m.cpuRatioToPlainDisconnect, 3)}`],
      [`  plain: ${m.plainDisconnect.processes} processes, ${m.plainDisconnect.sockets} sockets at once, all gone (ms)`, fmt(m.plainDisconnect.allGoneMs)],
      [
        `node main threads over the ${fmt(m.windowMs / 1000, 1)} s window: on CPU / waiting for a CPU (ms)`,
        m.nodeMainThread.map((x: { onCpuMs: number; waitingForCpuMs: number } | null) => (x ? `${fmt(x.onCpuMs, 0)} / ${fmt(x.waitingForCpuMs, 0)}` : "n/a")).join(", "),
      ],
    ]);
  }
  const mem = res.memory;
  if (mem) {
    phaseName = "memory";
    const side = (x: any) => `heap ${fmt(x.heapPerSocketKB, 2)} KB, RSS ${fmt(x.rssPerSocketKB, 2)} KB  (heap ${x.heapUsedBeforeMiB} -> ${x.heapUsedAfterMiB} MiB, RSS ${x.rssBeforeMiB} -> ${x.rssAfterMiB} MiB)`;
    sec(`5. memory per idle socket (${mem.sockets} sockets on one process${mem.gatehouse.afterFullGc ? ", heap after a full GC" : ""})`, [
      ["Gatehouse node 0, authenticated", side(mem.gatehouse)],
      ["plain socket.io, same sockets", side(mem.plain)],
      ["ratio Gatehouse / plain per socket: heap / RSS", `${fmt(mem.heapRatioToPlain, 3)} / ${fmt(mem.rssRatioToPlain, 3)}`],
    ]);
  }
  const bw = res.banwave;
  if (bw) {
    phaseName = "banwave";
    sec(`6. ban wave: ${bw.users} users x ${bw.socketsPerUser} sockets banned at once (${bw.sockets} sockets)`, [
      ["first ban sent -> last banned socket gone (ms)", fmt(bw.allGoneMs)],
      [`innocent player per node, ack every ${bw.pingEveryMs} ms: worst (ms)`, `${fmt(bw.innocentWorstMs)}  (per node ${bw.innocentWorstMsPerNode.map((x: number) => fmt(x)).join(" / ")}; p50 ${fmt(bw.innocentRttDuringMs.p50)}, before the wave p99 ${fmt(bw.innocentRttBeforeMs.p99)})`],
      ["  meanwhile, worst event-loop lag: each node", bw.nodeEventLoopLagMaxMs.map((x: number) => fmt(x)).join(" / ")],
      ["  the innocent players' process / the banned clients' process", `${fmt(bw.innocentProcessLagMaxMs)} / ${fmt(bw.benchProcessLagMaxMs)}`],
      ["session:revoked {banned} received", `${bw.toldBanned}/${bw.sockets}`],
    ]);
  }
  const rc = res.redis;
  if (rc) {
    phaseName = "redis";
    sec(`7. Redis commands per steady-state authenticated request (INFO commandstats, ${rc.windowMs} ms windows)`, [
      ["commands in an idle window / in a GET /me load window", `${rc.commandsIdleWindow} / ${rc.commandsLoadWindow}  (${fmtInt(rc.requests)} requests)`],
      ["commands per request (load minus idle)", fmt(rc.commandsPerRequest, 4)],
    ]);
  }
  const failed = checks.filter((c) => !c.ok);
  lines.push("");
  lines.push(failed.length === 0 ? `checks: all ${checks.length} passed` : `checks: ${failed.length} of ${checks.length} FAILED: ${failed.map((c) => `${c.name} (${c.detail})`).join("; ")}`);
  return lines.join("\n");
}

