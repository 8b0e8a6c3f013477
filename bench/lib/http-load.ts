/**
 * Closed-loop HTTP load: `concurrency` workers, each with its own keep-alive
 * connection (one http.Agent with maxSockets = concurrency), sending the next
 * request as soon as the previous answer is fully read, for a fixed duration.
 * Only answers that arrive inside the window count; latency is per request.
 */
import http from "node:http";
import { performance } from "node:perf_hooks";

export interface HttpLoadOptions {
  base: string;
  path: string;
  headers?: Record<string, string>;
  concurrency: number;
  durationMs: number;
  expectStatus?: number;
}

export interface HttpLoadResult {
  ok: number;
  errors: number;
  /** status -> count for unexpected answers (or "error:<message>") */
  errorKinds: Record<string, number>;
  elapsedMs: number;
  /** answers that completed after the window closed (not counted above; the server did serve them) */
  late: number;
  /** latencies of the OK answers, ms */
  latencies: number[];
}

export async function httpLoad(o: HttpLoadOptions): Promise<HttpLoadResult> {
  const url = new URL(o.path, o.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const expect = o.expectStatus ?? 200;
  const latencies: number[] = [];
  const errorKinds: Record<string, number> = {};
  let ok = 0;
  let errors = 0;
  let late = 0;
  const start = performance.now();
  const end = start + o.durationMs;

  const once = () =>
    new Promise<number | string>((resolve) => {
      const req = http.request(
        { hostname: url.hostname, port: url.port, path: url.pathname, method: "GET", agent, headers: o.headers },
        (res) => {
          res.on("data", () => undefined);
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", (err) => resolve(`error:${err.message}`));
        },
      );
      req.on("error", (err) => resolve(`error:${err.message}`));
      req.end();
    });

  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const status = await once();
      const t1 = performance.now();
      if (t1 > end) {
        late++;
        break;
      }
      if (status === expect) {
        ok++;
        latencies.push(t1 - t0);
      } else {
        errors++;
        const k = String(status);
        errorKinds[k] = (errorKinds[k] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  agent.destroy();
  return { ok, errors, errorKinds, elapsedMs: Math.min(performance.now(), end) - start, late, latencies };
}
