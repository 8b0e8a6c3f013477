/**
 * 3. HTTP request rate and server CPU per request: Gatehouse /healthz and /me
 * (full check), the naive express + JWT + Redis GET baseline's /me, and its bare
 * express /healthz (the floor Gatehouse's middleware stack is compared with).
 */
import { call } from "../lib/api";
import { checkMicro } from "../lib/check-micro";
import { check, log, params, perRoundRatios, quick, round1, summaryMs, withServerCpu } from "../lib/context";
import { httpLoad, type HttpLoadResult } from "../lib/http-load";
import type { ChildServer } from "../lib/procs";
import { round, sleep, summarize } from "../lib/stats";

export type HttpResult = Awaited<ReturnType<typeof benchHttp>>;

export async function benchHttp(gh: { url: string; pid?: number }, naive: ChildServer, token: string, blacklistedToken: string) {
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
    // The baseline's bare express floor: what Gatehouse's middleware stack is compared with.
    { name: "naiveHealthz", label: "bare express GET /healthz (naive baseline process)", base: naiveUrl, pid: naive.proc.pid, path: "/healthz", headers: {} as Record<string, string> },
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
    ratioHealthzToBareExpress: round(out.gatehouseHealthz!.reqPerSec / out.naiveHealthz!.reqPerSec, 3),
    ratioHealthzToBareExpressPerRound: perRoundRatios(acc.get("gatehouseHealthz")!.perRound, acc.get("naiveHealthz")!.perRound),
    cpuRatioHealthzToBareExpress: round(out.naiveHealthz!.serverCpuUsPerReq / out.gatehouseHealthz!.serverCpuUsPerReq, 3),
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
