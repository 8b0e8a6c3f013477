/**
 * 4. Mass revocation: POST /admin/revoke-all with >= 5,000 live sockets over the
 * 3 nodes: time until all are gone, the worst event-loop lag on any node, and
 * the nodes' CPU per dropped socket beside plain socket.io's own
 * io.disconnectSockets(true), in as many plain processes as nodes, all at once.
 */
import { performance } from "node:perf_hooks";
import { call, guest, login, metric, scrape, type Scrape } from "../lib/api";
import { check, connectedOn, cpuOfAll, log, ms, params, waitFor } from "../lib/context";
import { schedStat } from "../lib/cpu";
import { startChildServer, type ChildServer } from "../lib/procs";
import { closeAll, openMany, type SocketSpec } from "../lib/sockets";
import { mapLimit, round, sleep, summarize, withTimeout } from "../lib/stats";
import { summaryMs } from "../lib/context";

export type MassResult = Awaited<ReturnType<typeof benchMass>>;

/**
 * The same drop on plain socket.io, under the same conditions: as many plain socket.io processes
 * as Gatehouse nodes, holding the same number of idle sockets between them, all calling
 * io.disconnectSockets(true) at once; their CPU per socket. (One plain process dropping a third
 * of the sockets alone ran with two fewer busy processes on the machine: its CPU per socket was
 * 90-114 µs from run to run, and every op costs more CPU when five processes share two cores.)
 */
async function plainDisconnect(plains: ChildServer[], n: number) {
  const plainCount = async (plain: ChildServer) => (await call<{ sockets: number }>(plain.url, "GET", "/bench/memory")).body.sockets;
  const specs = Array.from({ length: n }, (_, i) => ({ url: plains[i % plains.length]!.url, token: "", node: i % plains.length }));
  const sockets = await openMany(specs, params.connectConcurrency);
  const share = (k: number) => specs.filter((x) => x.node === k).length;
  await waitFor(`${n} sockets on plain socket.io`, async () => (await Promise.all(plains.map(plainCount))).every((c, k) => c === share(k)), 30_000);
  await sleep(500);
  log(`mass: ${plains.length} plain socket.io processes, disconnectSockets(true) at once with ${n} sockets`);
  const pids = plains.map((x) => x.proc.pid);
  const c0 = cpuOfAll(pids);
  const t0 = performance.now();
  await Promise.all(plains.map((x) => call(x.url, "POST", "/bench/disconnect-all")));
  await withTimeout(Promise.all(sockets.map((s) => s.gone)), 30_000, "plain disconnectSockets");
  const allGoneMs = performance.now() - t0;
  const c1 = cpuOfAll(pids);
  closeAll(sockets);
  const cpuUsPerSocket = c0 !== null && c1 !== null ? ((c1 - c0) * 1000) / n : Number.NaN;
  return { processes: plains.length, sockets: n, allGoneMs: ms(allGoneMs), cpuUsPerSocket: round(cpuUsPerSocket, 1) };
}

export async function benchMass(nodes: { url: string; pid: number | undefined }[], admin: { username: string; password: string; token: string }, plain: ChildServer) {
  const urls = nodes.map((n) => n.url);
  const adminToken = admin.token;
  const p = params.mass;
  const users = await mapLimit(Array.from({ length: p.users }), 10, (_, i) => guest(urls[i % urls.length]!));
  const specs: SocketSpec[] = Array.from({ length: p.sockets }, (_, i) => ({ url: urls[i % urls.length]!, token: users[i % users.length]!.accessToken, node: i % urls.length }));
  log(`mass: connecting ${p.sockets} sockets over ${urls.length} nodes (${p.users} users)`);
  const tc = performance.now();
  const sockets = await openMany(specs, params.connectConcurrency);
  const connectMs = performance.now() - tc;
  const serverCounts = await Promise.all(urls.map(connectedOn));
  const total = serverCounts.reduce((a, b) => a + b, 0);
  check("mass: every socket is live on the nodes before revoke-all", total === p.sockets, `nodes report ${serverCounts.join(" + ")} = ${total}`);
  await sleep(2000);

  const lagMax = (s: Scrape) => metric(s, "nodejs_eventloop_lag_max_seconds") * 1000;
  // Idle floor: the same scrape-window-scrape with nothing happening (the histogram has a 10 ms resolution).
  await Promise.all(urls.map(scrape));
  await sleep(p.idleWindowMs);
  const idle = (await Promise.all(urls.map(scrape))).map(lagMax);

  log(`mass: POST /admin/revoke-all with ${total} live sockets`);
  await Promise.all(urls.map(scrape)); // resets each node's max-lag histogram
  const pids = nodes.map((n) => n.pid);
  const cpu0 = cpuOfAll(pids);
  const schedBefore = pids.map(schedStat);
  const t0 = performance.now();
  const r = await call(urls[0]!, "POST", "/admin/revoke-all", { token: adminToken });
  const t2xx = performance.now();
  check("mass: revoke-all answered 202", r.status === 202, `${r.status} ${r.text.slice(0, 200)}`);
  let timedOut = false;
  try {
    await withTimeout(Promise.all(sockets.map((s) => s.gone)), p.timeoutMs, "revoke-all");
  } catch {
    timedOut = true;
  }
  const gone = sockets.filter((s) => s.disconnectedAt !== null);
  const times = gone.map((s) => s.disconnectedAt! - t0);
  const cpu1 = cpuOfAll(pids);
  await sleep(300);
  const afterScrapes = await Promise.all(urls.map(scrape));
  const windowMs = performance.now() - t0;
  // Each node's main (event-loop) thread over the same window: time on a CPU, and time runnable
  // but waiting for one. On a machine with fewer cores than busy processes, a lag figure can be
  // mostly waiting, which the node did not cause.
  const sched = pids.map((pid, i) => {
    const a = schedBefore[i];
    const b = schedStat(pid);
    return a && b ? { onCpuMs: ms((b.onCpuNs - a.onCpuNs) / 1e6), waitingForCpuMs: ms((b.waitNs - a.waitNs) / 1e6) } : null;
  });
  const stall = afterScrapes.map(lagMax);
  const leftOnNodes = afterScrapes.map((s) => metric(s, "gatehouse_connected_sockets"));
  const revokedAll = sockets.filter((s) => s.toldWhy && s.revocations[0]?.reason === "revoked_all").length;
  const reasons: Record<string, number> = {};
  for (const s of sockets) reasons[s.disconnectReason ?? "still connected"] = (reasons[s.disconnectReason ?? "still connected"] ?? 0) + 1;
  const perNodeLast = urls.map((_, n) => {
    const t = sockets.filter((s) => s.node === n && s.disconnectedAt !== null).map((s) => s.disconnectedAt! - t0);
    return ms(t.length ? Math.max(...t) : Number.NaN);
  });
  check("mass: every socket gone", !timedOut && gone.length === p.sockets && leftOnNodes.every((x) => x === 0), `${gone.length}/${p.sockets} client-side, nodes left ${leftOnNodes.join("/")}`);
  check("mass: every socket got session:revoked {revoked_all} first", revokedAll === p.sockets, `${revokedAll}/${p.sockets}`);
  closeAll(sockets);

  // revoke-all killed the admin token too: it must be refused now, and a fresh login must work at once.
  const oldAdmin = await call(urls[1]!, "GET", "/me", { token: adminToken });
  check("mass: the pre-revoke-all admin token is refused", oldAdmin.status === 401, String(oldAdmin.status));
  const fresh = await login(urls[1]!, admin.username, admin.password);
  const freshMe = await call(urls[2]!, "GET", "/me", { token: fresh.accessToken });
  check("mass: a token issued right after revoke-all works on another node", freshMe.status === 200, String(freshMe.status));

  const nodeCpuUsPerSocket = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) * 1000) / p.sockets : Number.NaN;
  // Two more plain processes beside the run's own, for this comparison only.
  const extra = await Promise.all(Array.from({ length: urls.length - 1 }, (_, i) => startChildServer(`plain-io-mass-${i + 1}`, "plain-io", { PORT: "0" })));
  let plainSide: Awaited<ReturnType<typeof plainDisconnect>>;
  try {
    plainSide = await plainDisconnect([plain, ...extra], p.sockets);
  } finally {
    await Promise.all(extra.map((x) => x.stop()));
  }

  return {
    sockets: p.sockets,
    users: p.users,
    perNode: serverCounts,
    connectSeconds: round(connectMs / 1000, 2),
    connectsPerSecWhilePreparing: round(p.sockets / (connectMs / 1000), 0),
    requestMs: ms(t2xx - t0),
    firstDisconnectMs: ms(times.length ? Math.min(...times) : Number.NaN),
    allGoneMs: ms(times.length ? Math.max(...times) : Number.NaN),
    lastDisconnectPerNodeMs: perNodeLast,
    disconnectTimesMs: summaryMs(summarize(times)),
    sessionRevokedRevokedAll: revokedAll,
    disconnectReasons: reasons,
    eventLoopLagMaxMs: { perNode: stall.map((x) => ms(x)), worst: ms(Math.max(...stall)) },
    windowMs: ms(windowMs),
    nodeMainThread: sched,
    /** CPU of the 3 nodes from the request to the last client disconnect, per dropped socket */
    nodeCpuUsPerDroppedSocket: round(nodeCpuUsPerSocket, 1),
    plainDisconnect: plainSide,
    cpuRatioToPlainDisconnect: round(nodeCpuUsPerSocket / plainSide.cpuUsPerSocket, 3),
    idleEventLoopLagMaxMs: { perNode: idle.map((x) => ms(x)), worst: ms(Math.max(...idle)), windowMs: p.idleWindowMs },
  };
}
