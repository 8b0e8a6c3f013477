/**
 * A small JSON-over-HTTP client for the bench (node:http with a keep-alive
 * agent: less client overhead than fetch, so timings of admin calls are tighter),
 * plus the few Gatehouse calls the bench needs and a /metrics scraper.
 */
import http from "node:http";
import type { TokenPair } from "../../shared/claims";

export const apiAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply<T = unknown> {
  status: number;
  body: T;
  text: string;
}

/**
 * One request. A GET that fails with "socket hang up" / ECONNRESET is sent once more: a pooled
 * keep-alive connection can be closed by the server (idle timeout) just as it is reused.
 */
export async function call<T = unknown>(base: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Reply<T>> {
  try {
    return await callOnce<T>(base, method, path, opts);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (method !== "GET" || !(e.code === "ECONNRESET" || e.message === "socket hang up")) throw err;
    return callOnce<T>(base, method, path, opts);
  }
}

function callOnce<T>(base: string, method: string, path: string, opts: { token?: string; body?: unknown }): Promise<Reply<T>> {
  const url = new URL(path, base);
  const payload = opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (payload !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { hostname: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, agent: apiAgent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (/metrics)
          }
          resolve({ status: res.statusCode ?? 0, body: body as T, text });
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}

function expectStatus<T>(r: Reply<T>, status: number, what: string): T {
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

/** A fresh guest player (no password hashing on the server: cheap to make many). */
export async function guest(base: string, device = "bench"): Promise<TokenPair> {
  return expectStatus(await call<TokenPair>(base, "POST", "/auth/guest", { body: { device } }), 201, "POST /auth/guest");
}

export async function login(base: string, username: string, password: string, device = "bench-console"): Promise<TokenPair> {
  return expectStatus(await call<TokenPair>(base, "POST", "/auth/login", { body: { username, password, device } }), 200, "POST /auth/login");
}

/** One /metrics scrape: the first series of each metric name, plus the raw text for labelled series. */
export interface Scrape {
  values: Map<string, number>;
  text: string;
}

export function parseMetrics(text: string): Scrape {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    if (!values.has(m[1]!)) values.set(m[1]!, Number(m[3]));
  }
  return { values, text };
}

export async function scrape(base: string): Promise<Scrape> {
  const r = await call<string>(base, "GET", "/metrics");
  if (r.status !== 200) throw new Error(`GET ${base}/metrics: ${r.status}`);
  return parseMetrics(r.text);
}

export function metric(s: Scrape, name: string): number {
  const v = s.values.get(name);
  if (v === undefined) throw new Error(`metric ${name} not found in /metrics`);
  return v;
}

/** Sum of the series of `name` whose label block contains `labelIncludes` (e.g. 'result="ok"'). */
export function sumSeries(s: Scrape, name: string, labelIncludes = ""): number {
  let sum = 0;
  for (const line of s.text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name || !(m[2] ?? "").includes(labelIncludes)) continue;
    sum += Number(m[3]);
  }
  return sum;
}
