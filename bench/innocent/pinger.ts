/**
 * The ban wave's innocent players, in a process of their own (forked by bench/phases/banwave.ts):
 * one socket per node, each sending an ack-ed event every few ms. A real player's device does not
 * share an event loop with 2,000 other clients; in the bench process the pings were delayed by
 * that process's own stalls (up to ~220 ms seen), which no server caused.
 *
 * env: INNOCENTS (JSON [{url, token}]), PING_EVERY_MS. IPC: sends {ready}; on {mark} starts a new
 * window; on {stop} sends {result} (round trips before / after the mark per socket, still
 * connected, this process's worst event-loop delay after the mark) and exits.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { io } from "socket.io-client";
import { Events } from "../../shared/protocol";
import { CLIENT_OPTS } from "../lib/sockets";

const innocents = JSON.parse(process.env.INNOCENTS ?? "[]") as { url: string; token: string }[];
const everyMs = Number(process.env.PING_EVERY_MS ?? "5");

const sockets = await Promise.all(
  innocents.map(
    ({ url, token }) =>
      new Promise<ReturnType<typeof io>>((resolve, reject) => {
        const s = io(url, { ...CLIENT_OPTS, auth: { token } });
        s.once("connect", () => resolve(s));
        s.once("connect_error", reject);
      }),
  ),
);
const before: number[][] = sockets.map(() => []);
const during: number[][] = sockets.map(() => []);
let window = before;
let stopped = false;
const loop = monitorEventLoopDelay({ resolution: 1 });

const pingers = sockets.map(async (s, i) => {
  while (!stopped) {
    const t0 = performance.now();
    // auth:refresh with an empty payload is answered VALIDATION_FAILED at once: a pure round trip.
    await new Promise<void>((resolve) => s.timeout(10_000).emit(Events.AUTH_REFRESH, {}, () => resolve()));
    window[i]!.push(performance.now() - t0);
    await sleep(everyMs);
  }
});

process.on("message", async (m: { type: string }) => {
  if (m.type === "mark") {
    window = during;
    loop.enable();
  } else if (m.type === "stop") {
    stopped = true;
    await Promise.all(pingers);
    loop.disable();
    const connected = sockets.map((s) => s.connected);
    sockets.forEach((s) => s.disconnect());
    process.send!({ type: "result", before, during, connected, lagMaxMs: loop.max / 1e6 }, () => process.exit(0));
  }
});
process.send!({ type: "ready" });
