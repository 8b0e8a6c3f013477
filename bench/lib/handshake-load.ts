/**
 * Closed-loop socket.io handshake load: `concurrency` loops, each connecting a
 * brand-new client (websocket transport, forceNew, no reconnection), counting
 * the `connect`, disconnecting at once and starting the next, for a fixed
 * duration. Connects completed inside the window count.
 */
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import { CLIENT_OPTS } from "./sockets";

export interface HandshakeLoadOptions {
  url: string;
  auth: Record<string, unknown>;
  concurrency: number;
  durationMs: number;
}

export interface HandshakeLoadResult {
  connects: number;
  errors: number;
  errorKinds: Record<string, number>;
  elapsedMs: number;
  /** answers that completed after the window closed (not counted above; the server did serve them) */
  late: number;
  /** connect latency (new client -> connect event), ms */
  latencies: number[];
}

export async function handshakeLoad(o: HandshakeLoadOptions): Promise<HandshakeLoadResult> {
  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  let connects = 0;
  let errors = 0;
  let late = 0;
  const start = performance.now();
  const end = start + o.durationMs;

  const once = () =>
    new Promise<string | null>((resolve) => {
      const socket = io(o.url, { ...CLIENT_OPTS, timeout: 10_000, auth: o.auth });
      socket.once("connect", () => {
        socket.disconnect();
        resolve(null);
      });
      socket.once("connect_error", (err: Error) => {
        socket.disconnect();
        resolve(err.message || "connect_error");
      });
    });

  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const err = await once();
      const t1 = performance.now();
      if (t1 > end) {
        late++;
        break;
      }
      if (err === null) {
        connects++;
        latencies.push(t1 - t0);
      } else {
        errors++;
        errorKinds[err] = (errorKinds[err] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, loop));
  return { connects, errors, errorKinds, elapsedMs: Math.min(performance.now(), end) - start, late, latencies };
}
