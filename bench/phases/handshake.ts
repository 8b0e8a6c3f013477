/** 2. Handshake rate and server CPU per connect: Gatehouse (full check) vs plain socket.io (auth off). */
import { check, log, params, perRoundRatios, round1, summaryMs, withServerCpu } from "../lib/context";
import { scrape, sumSeries } from "../lib/api";
import { handshakeLoad, type HandshakeLoadResult } from "../lib/handshake-load";
import type { ChildServer } from "../lib/procs";
import { round, sleep, summarize } from "../lib/stats";

export type HandshakeResult = Awaited<ReturnType<typeof benchHandshake>>;

export async function benchHandshake(gh: { url: string; pid?: number }, plain: ChildServer, plainJwt: ChildServer, token: string) {
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
