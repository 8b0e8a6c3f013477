/**
 * 6. Ban wave: U users x S sockets spread over the nodes, all banned at once
 * (U ban requests in parallel). Meanwhile one innocent player per node, in a
 * process of its own, sends an ack-ed event every few ms; the worst answer delay
 * each sees is the stall a real player would feel.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { call, guest, metric, scrape } from "../lib/api";
import { check, log, ms, params, summaryMs } from "../lib/context";
import { forkChild } from "../lib/procs";
import { closeAll, openMany, type SocketSpec } from "../lib/sockets";
import { mapLimit, sleep, summarize, withTimeout } from "../lib/stats";

export type BanwaveResult = Awaited<ReturnType<typeof benchBanwave>>;

interface PingerResult {
  before: number[][];
  during: number[][];
  connected: boolean[];
  lagMaxMs: number;
}

/** The innocent players in their own process (bench/innocent/pinger.ts): see there why. */
async function startInnocents(innocents: { url: string; token: string }[], everyMs: number) {
  const child = forkChild("pinger", { INNOCENTS: JSON.stringify(innocents), PING_EVERY_MS: String(everyMs) });
  const next = (type: string) =>
    new Promise<any>((resolve, reject) => {
      const onMessage = (m: { type: string }) => {
        if (m.type !== type) return;
        child.off("message", onMessage);
        resolve(m);
      };
      child.on("message", onMessage);
      child.once("exit", (code) => reject(new Error(`innocent players' process exited (${code}) before ${type}`)));
    });
  await withTimeout(next("ready"), 30_000, "innocent players connecting");
  return {
    /** from now on, round trips count as "during the wave" */
    mark: () => child.send({ type: "mark" }),
    stop: async (): Promise<PingerResult> => {
      const result = next("result");
      child.send({ type: "stop" });
      return withTimeout(result, 30_000, "innocent players stopping");
    },
  };
}

export async function benchBanwave(urls: string[], adminToken: string) {
  const p = params.banwave;
  const total = p.users * p.socketsPerUser;
  const users = await mapLimit(Array.from({ length: p.users }), 10, (_, i) => guest(urls[i % urls.length]!));
  const specs: SocketSpec[] = [];
  users.forEach((u, ui) => {
    for (let k = 0; k < p.socketsPerUser; k++) {
      const node = (ui + k) % urls.length;
      specs.push({ url: urls[node]!, token: u.accessToken, node });
    }
  });
  log(`banwave: connecting ${total} sockets (${p.users} users x ${p.socketsPerUser}) over ${urls.length} nodes, and one innocent player per node`);
  const sockets = await openMany(specs, params.connectConcurrency);
  const innocents = await startInnocents(await Promise.all(urls.map(async (url) => ({ url, token: (await guest(url)).accessToken }))), p.pingEveryMs);
  await sleep(1500);

  log(`banwave: banning ${p.users} users at once`);
  // Where an innocent player's delay comes from: each node's event loop (its max-lag metric, reset
  // by a scrape) and this process's, which also runs the 2,000 banned clients and the pingers.
  await Promise.all(urls.map(scrape));
  const benchLoop = monitorEventLoopDelay({ resolution: 1 });
  benchLoop.enable();
  innocents.mark();
  const t0 = performance.now();
  const answers = await Promise.all(
    users.map((u, i) => call(urls[i % urls.length]!, "POST", `/admin/users/${u.user.id}/ban`, { token: adminToken, body: { reason: "bench ban wave" } })),
  );
  let timedOut = false;
  try {
    await withTimeout(Promise.all(sockets.map((s) => s.gone)), p.timeoutMs, "ban wave");
  } catch {
    timedOut = true;
  }
  const allGone = performance.now() - t0;
  await sleep(200);
  const pinged = await innocents.stop();
  benchLoop.disable();
  const nodeLagMs = (await Promise.all(urls.map(scrape))).map((sc) => ms(metric(sc, "nodejs_eventloop_lag_max_seconds") * 1000));
  const { during, before } = pinged;
  const worstPerNode = during.map((r) => ms(r.length ? Math.max(...r) : Number.NaN));
  const gone = sockets.filter((s) => s.disconnectedAt !== null).length;
  const banned = sockets.filter((s) => s.toldWhy && s.revocations[0]?.reason === "banned").length;
  check("banwave: every ban answered 2xx", answers.every((a) => a.status >= 200 && a.status < 300), answers.filter((a) => a.status >= 300).map((a) => a.status).join(","));
  check("banwave: every banned socket gone", !timedOut && gone === total, `${gone}/${total}`);
  check("banwave: every banned socket told {banned} first", banned === total, `${banned}/${total}`);
  check("banwave: the innocent players stayed connected", pinged.connected.every(Boolean));
  closeAll(sockets);
  return {
    users: p.users,
    socketsPerUser: p.socketsPerUser,
    sockets: total,
    allGoneMs: ms(allGone),
    pingEveryMs: p.pingEveryMs,
    innocentWorstMsPerNode: worstPerNode,
    innocentWorstMs: ms(Math.max(...worstPerNode)),
    innocentRttDuringMs: summaryMs(summarize(during.flat())),
    innocentRttBeforeMs: summaryMs(summarize(before.flat())),
    /** the worst event-loop lag of each node during the wave (prom-client, 10 ms resolution) */
    nodeEventLoopLagMaxMs: nodeLagMs,
    /** the worst event-loop delay of the bench process (the banned clients' side) during the wave */
    benchProcessLagMaxMs: ms(benchLoop.max / 1e6),
    /** the same for the innocent players' own process: their figures are only as good as this */
    innocentProcessLagMaxMs: ms(pinged.lagMaxMs),
    toldBanned: banned,
  };
}
