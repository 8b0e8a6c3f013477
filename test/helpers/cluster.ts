/**
 * Cluster test helpers: a local cluster of child-process nodes (dist/, built by
 * the global setup) on its own redis-server or its own Redis Cluster, plus the assertions every cluster
 * test shares (dropped / alive / refused on every node, /readyz).
 */
import { Redis } from "ioredis";
import { expect } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { startLocalCluster, type AnyLocalCluster, type LocalCluster, type LocalClusterOnRedisCluster } from "../../scripts/lib/local-cluster";
import type { NodeProcess } from "../../scripts/lib/node-process";
import { call, login } from "./http";
import { emitAck, refusedCode, type TestSocket } from "./sockets";
import { waitFor } from "./wait";

/** Rate limits off: the tests open many sockets and log in often from one address. */
export { NO_LIMITS } from "../../scripts/lib/no-limits";
import { NO_LIMITS } from "../../scripts/lib/no-limits";

export type { AnyLocalCluster, LocalCluster, LocalClusterOnRedisCluster, NodeProcess };

/**
 * Starts `nodes` nodes (sequentially: the first creates the admin) with limits off and `env` on
 * top, on one redis-server, or with `{ redisCluster: true }` on a Redis Cluster (3 + 3).
 */
export function startCluster(nodes: number, env?: Record<string, string>): Promise<LocalCluster>;
export function startCluster(nodes: number, env: Record<string, string>, opts: { redisCluster: true }): Promise<LocalClusterOnRedisCluster>;
export function startCluster(nodes: number, env: Record<string, string> = {}, opts: { redisCluster?: boolean } = {}): Promise<AnyLocalCluster> {
  return startLocalCluster({ nodes, env: { ...NO_LIMITS, LOG_LEVEL: "info", ...env }, echo: process.env.CLUSTER_ECHO === "1", redisCluster: opts.redisCluster === true });
}

export function adminOf(cluster: AnyLocalCluster, url: string): Promise<TokenPair> {
  return login(url, cluster.admin.username, cluster.admin.password, "console");
}

/** GET /readyz status, or 0 when the node refuses the connection (stopped / stopping). */
export async function readyz(url: string): Promise<number> {
  try {
    const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(3000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 0;
  }
}

/** Polls /readyz on every node until it answers `status` (it emits nothing, so polling is the only way). */
export async function waitReadyz(urls: string[], status: number, timeoutMs = 10_000): Promise<void> {
  await Promise.all(
    urls.map((url) =>
      waitFor(async () => (await readyz(url)) === status, { timeoutMs, intervalMs: 50, message: `${url}/readyz == ${status}` }),
    ),
  );
}

/** An ioredis client on the test's own redis-server (never the shared one); closed by the caller. */
export function redisClient(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, lazyConnect: false });
  c.on("error", () => undefined);
  return c;
}

/** The socket got session:revoked with `reason`, then a server disconnect, and will not reconnect. */
export async function expectDropped(s: TestSocket, reason: string): Promise<void> {
  const r = await s.revoked;
  expect(r.reason).toBe(reason);
  expect(r.disconnectReason).toBe("io server disconnect");
  expect(s.socket.active).toBe(false);
}

/** Still connected and still answering: an auth:refresh round trip with its own token. */
export async function expectAlive(s: TestSocket, pair: TokenPair): Promise<void> {
  expect(s.socket.connected).toBe(true);
  const ack = await emitAck(s.socket, "auth:refresh", { token: pair.accessToken });
  expect(ack).toMatchObject({ ok: true });
  expect(s.revocations).toEqual([]);
}

/** The token is refused on every node, at the handshake (connect_error code) and on HTTP (GET /me). */
export async function expectRefusedEverywhere(urls: string[], pair: TokenPair, code: string): Promise<void> {
  const results = await Promise.all(
    urls.map(async (url) => {
      const [hs, me] = await Promise.all([refusedCode(url, pair.accessToken, { reconnection: false }), call(url, "GET", "/me", { token: pair.accessToken })]);
      return { url, handshake: hs.message, data: hs.data, http: me.status, httpCode: me.body?.error?.code };
    }),
  );
  for (const r of results) {
    expect(r, r.url).toMatchObject({ handshake: code, data: { code }, http: 401, httpCode: code });
  }
}

/** The token is accepted on every node's HTTP API. */
export async function expectAcceptedEverywhere(urls: string[], pair: TokenPair): Promise<void> {
  const answers = await Promise.all(urls.map((url) => call(url, "GET", "/me", { token: pair.accessToken })));
  const statuses = answers.map((r) => r.status);
  expect(statuses, JSON.stringify(answers.map((r) => r.body))).toEqual(urls.map(() => 200));
}

/** p-th percentile (0..100) of a list of numbers, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
