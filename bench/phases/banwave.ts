/**
 * 6. Ban wave: U users x S sockets spread over the nodes, all banned at once
 * (U ban requests in parallel). Meanwhile one innocent player per node sends an
 * ack-ed event every few ms; the worst answer delay each sees is the stall a
 * real player would feel.
 */
import { performance } from "node:perf_hooks";
import { Events } from "../../shared/protocol";
import { call, guest } from "../lib/api";
import { check, log, ms, params, summaryMs } from "../lib/context";
import { closeAll, openMany, openSocket, type BenchSocket, type SocketSpec } from "../lib/sockets";
import { mapLimit, sleep, summarize, withTimeout } from "../lib/stats";

export type BanwaveResult = Awaited<ReturnType<typeof benchBanwave>>;

/** An ack round trip every `everyMs` until stopped: auth:refresh with an empty payload answers VALIDATION_FAILED at once. */
function pinger(s: BenchSocket, everyMs: number) {
  const rtts: number[] = [];
  let stopped = false;
  let pending: Promise<void> = Promise.resolve();
  const loop = async () => {
    while (!stopped) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => s.socket.timeout(10_000).emit(Events.AUTH_REFRESH, {}, () => resolve()));
      rtts.push(performance.now() - t0);
      await sleep(everyMs);
    }
  };
  pending = loop();
  return {
    rtts,
    /** stops and returns the worst delay, counting one still in flight */
    async stop(): Promise<void> {
      stopped = true;
      await pending;
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
  const innocents = await Promise.all(urls.map(async (url, node) => openSocket(url, (await guest(url)).accessToken, node)));
  await sleep(1000);
  const pingers = innocents.map((s) => pinger(s, p.pingEveryMs));
  await sleep(500);
  const baseline = pingers.map((x) => x.rtts.length);

  log(`banwave: banning ${p.users} users at once`);
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
  await Promise.all(pingers.map((x) => x.stop()));
  const during = pingers.map((x, i) => x.rtts.slice(baseline[i]));
  const before = pingers.map((x, i) => x.rtts.slice(0, baseline[i]));
  const worstPerNode = during.map((r) => ms(r.length ? Math.max(...r) : Number.NaN));
  const gone = sockets.filter((s) => s.disconnectedAt !== null).length;
  const banned = sockets.filter((s) => s.toldWhy && s.revocations[0]?.reason === "banned").length;
  check("banwave: every ban answered 2xx", answers.every((a) => a.status >= 200 && a.status < 300), answers.filter((a) => a.status >= 300).map((a) => a.status).join(","));
  check("banwave: every banned socket gone", !timedOut && gone === total, `${gone}/${total}`);
  check("banwave: every banned socket told {banned} first", banned === total, `${banned}/${total}`);
  check("banwave: the innocent players stayed connected", innocents.every((s) => s.socket.connected));
  closeAll([...sockets, ...innocents]);
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
    toldBanned: banned,
  };
}
