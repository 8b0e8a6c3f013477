/** 1. Revocation propagation: admin kick -> the user's sockets on every node gone (contract section 7). */
import { performance } from "node:perf_hooks";
import { call, guest } from "../lib/api";
import { check, log, params, summaryMs } from "../lib/context";
import { closeAll, openMany, type SocketSpec } from "../lib/sockets";
import { mapLimit, sleep, summarize, withTimeout } from "../lib/stats";

export type PropagationResult = Awaited<ReturnType<typeof benchPropagation>>;

export async function benchPropagation(urls: string[], adminToken: string) {
  const p = params.propagation;
  const sendToLast: number[] = [];
  const ackToLast: number[] = [];
  const requestMs: number[] = [];
  const sameNode: number[] = [];
  const otherNodes: number[] = [];
  const fail = { non202: 0, timeouts: 0, missingRevoked: 0, wrongReason: 0, notServerDisconnect: 0 };
  let socketsChecked = 0;
  let revokedOk = 0;
  let kickNo = 0;

  while (kickNo < p.kicks) {
    const n = Math.min(p.usersPerBatch, p.kicks - kickNo);
    const users = await mapLimit(Array.from({ length: n }), 10, (_, i) => guest(urls[i % urls.length]!));
    const specs: SocketSpec[] = users.flatMap((u) => urls.map((url, node) => ({ url, token: u.accessToken, node })));
    const sockets = await openMany(specs, params.connectConcurrency);
    log(`propagation: ${n} users x ${urls.length} sockets ready; kicking ${kickNo + 1}..${kickNo + n}`);
    await sleep(300);

    for (let ui = 0; ui < users.length; ui++, kickNo++) {
      const user = users[ui]!;
      const mine = sockets.slice(ui * urls.length, (ui + 1) * urls.length);
      const via = kickNo % urls.length;
      const t0 = performance.now();
      const r = await call(urls[via]!, "POST", `/admin/users/${user.user.id}/kick`, { token: adminToken, body: { reason: "bench" } });
      const t2xx = performance.now();
      if (r.status !== 202) {
        fail.non202++;
        log(`kick answered ${r.status}: ${r.text.slice(0, 200)}`);
      }
      try {
        await withTimeout(Promise.all(mine.map((s) => s.gone)), p.timeoutMs, "kick");
      } catch {
        fail.timeouts++;
        closeAll(mine);
        continue;
      }
      const last = Math.max(...mine.map((s) => s.disconnectedAt!));
      sendToLast.push(last - t0);
      ackToLast.push(last - t2xx);
      requestMs.push(t2xx - t0);
      for (const s of mine) {
        socketsChecked++;
        (s.node === via ? sameNode : otherNodes).push(s.disconnectedAt! - t0);
        const got = s.revocations[0];
        if (!got || !s.toldWhy) fail.missingRevoked++;
        else if (got.reason !== "kicked") fail.wrongReason++;
        else revokedOk++;
        if (s.disconnectReason !== "io server disconnect") fail.notServerDisconnect++;
      }
    }
    closeAll(sockets);
  }

  const measured = sendToLast.length;
  check(`propagation: >= 200 kicks measured`, measured >= Math.min(200, p.kicks), `${measured}/${p.kicks}`);
  check(
    "propagation: every socket got session:revoked {kicked} before a server disconnect",
    revokedOk === socketsChecked && fail.notServerDisconnect === 0 && socketsChecked === measured * urls.length,
    `${revokedOk}/${socketsChecked} ok; ${JSON.stringify(fail)}`,
  );
  return {
    kicks: p.kicks,
    measured,
    socketsPerKick: urls.length,
    sendToLastDisconnectMs: summaryMs(summarize(sendToLast)),
    ackToLastDisconnectMs: summaryMs(summarize(ackToLast)),
    kickRequestMs: summaryMs(summarize(requestMs)),
    socketOnKickNodeMs: summaryMs(summarize(sameNode)),
    socketOnOtherNodesMs: summaryMs(summarize(otherNodes)),
    sessionRevokedKicked: revokedOk,
    socketsChecked,
    failures: fail,
  };
}
