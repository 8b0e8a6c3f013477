/**
 * Lost feed messages (pitfall 1): every node's subscriber connection is killed
 * (CLIENT KILL TYPE pubsub) and a revocation is issued at once, while they
 * reconnect, so its PUBLISH reaches nobody. The issuing node applies it
 * locally; the others must recover it by resync (loadMarks + sweep) and still
 * disconnect every covered socket promptly, then report ready again.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOPOLOGIES, redisUnderTest, startClusterOn } from "../helpers/topologies";
import type { TokenPair } from "../../shared/claims";
import { call, login, register, uniqueName } from "../helpers/http";
import { connect, type TestSocket } from "../helpers/sockets";
import { within } from "../helpers/wait";
import {
  adminOf,
  expectAlive,
  expectDropped,
  expectRefusedEverywhere,
  waitReadyz,
  type AnyLocalCluster,
} from "../helpers/cluster";

describe.each(TOPOLOGIES)("revocations published while the nodes' subscribers are down, on $name", (topology) => {
  let cluster: AnyLocalCluster;
  let urls: string[];
  let admin: TokenPair;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startClusterOn(topology, 3);
    urls = cluster.nodes.map((n) => n.url);
    admin = await adminOf(cluster, urls[1]!);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
  });

  /** A user with one device per node, and a bystander with one socket per node. */
  async function cast() {
    const username = uniqueName("loss");
    await register(urls[0]!, username);
    const pairs = await Promise.all(urls.map((url, i) => login(url, username, "password-123", `dev${i}`)));
    const sockets = await Promise.all(pairs.map((p, i) => connect(urls[i]!, p.accessToken)));
    const bystanderName = uniqueName("by");
    await register(urls[0]!, bystanderName);
    const bPairs = await Promise.all(urls.map((url, i) => login(url, bystanderName, "password-123", `dev${i}`)));
    const bSockets = await Promise.all(bPairs.map((p, i) => connect(urls[i]!, p.accessToken)));
    open.push(...sockets, ...bSockets);
    return { pairs, sockets, bPairs, bSockets };
  }

  /** Kills every pub/sub connection on the test's Redis (the nodes' revocation feeds and adapter subscribers). */
  async function killSubscribers(): Promise<number> {
    const killed = await redisUnderTest(cluster).onEachServer(async (r) => Number(await r.client("KILL", "TYPE", "pubsub")));
    return killed.reduce((a, b) => a + b, 0);
  }

  /** gatehouse_revocations_total for `reason` received over the feed, per node. */
  async function feedCount(reason: string): Promise<number[]> {
    return Promise.all(
      urls.map(async (url) => {
        const text = (await call<string>(url, "GET", "/metrics")).body;
        const line = text.split("\n").find((l) => l.startsWith("gatehouse_revocations_total{") && l.includes(`reason="${reason}"`) && l.includes('source="feed"'));
        return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
      }),
    );
  }

  const lostLines = () => cluster.nodes.map((n) => n.output.filter((l) => l.includes("revocation feed lost")).length);

  it("a kick issued right after the kill still disconnects the user's sockets on every node within 2 s", async () => {
    const c = await cast();
    const lostBefore = lostLines();
    const feedBefore = await feedCount("kicked");
    const killed = await killSubscribers();
    expect(killed).toBeGreaterThanOrEqual(3); // at least one revocation feed per node
    const t0 = performance.now();
    const r = await call(urls[1]!, "POST", `/admin/users/${c.pairs[0]!.user.id}/kick`, { token: admin.accessToken, body: {} });
    expect(r.status).toBe(202);
    await within(Promise.all(c.sockets.map((s) => expectDropped(s, "kicked"))), 2000, "every covered socket dropped");
    const tGone = performance.now() - t0;
    await waitReadyz(urls, 200);
    // Which way the kick reached each node: over the feed (the publish beat the kill's effect) or by resync.
    const feedAfter = await feedCount("kicked");
    const paths = feedAfter.map((n, i) => `node ${i + 1}: ${n > feedBefore[i]! ? "feed" : "resync"}`);
    console.log(`feed loss: kick -> last covered socket gone ${tGone.toFixed(0)} ms (${paths.join(", ")})`);
    // Every node really lost its feed (so nodes 1 and 3 could only learn of the kick by resync).
    lostLines().forEach((n, i) => expect(n, `node ${i + 1} logged the loss`).toBeGreaterThan(lostBefore[i]!));
    await expectRefusedEverywhere(urls, c.pairs[2]!, "TOKEN_REVOKED");
    await Promise.all(c.bSockets.map((s, i) => expectAlive(s, c.bPairs[i]!)));
  });

  it("a session revoke issued right after the kill reaches only that session, on its node", async () => {
    const c = await cast();
    await killSubscribers();
    // Node 3's session, revoked through node 1: only resync can tell node 3.
    const victim = c.pairs[2]!;
    const r = await call(urls[0]!, "POST", `/admin/sessions/${victim.sessionId}/revoke`, { token: admin.accessToken, body: {} });
    expect(r.status).toBe(202);
    await within(expectDropped(c.sockets[2]!, "session_revoked"), 2000, "the covered socket dropped");
    await waitReadyz(urls, 200);
    await expectRefusedEverywhere(urls, victim, "SESSION_REVOKED");
    await Promise.all([expectAlive(c.sockets[0]!, c.pairs[0]!), expectAlive(c.sockets[1]!, c.pairs[1]!)]);
    await Promise.all(c.bSockets.map((s, i) => expectAlive(s, c.bPairs[i]!)));
  });

  it("while no node can subscribe, a revoked token is still refused on every node right after the 2xx (read-through)", async () => {
    const c = await cast();
    const redis = redisUnderTest(cluster);
    try {
      // An ACL without SUBSCRIBE keeps every feed down while commands still work: out of sync on purpose.
      await redis.onEachServer(async (r) => {
        await r.call("ACL", "SETUSER", "default", "-subscribe", "-psubscribe", "-ssubscribe");
        await r.client("KILL", "TYPE", "pubsub");
      });
      await waitReadyz(urls, 503);
      // Device 0 logs out through node 1. No node hears it over the feed, yet the next request on
      // any node must fail: a node out of sync reads the token's own marks from Redis.
      expect((await call(urls[0]!, "POST", "/auth/logout", { token: c.pairs[0]!.accessToken })).status).toBe(204);
      await expectRefusedEverywhere(urls, c.pairs[0]!, "TOKEN_REVOKED");
      // Tokens nobody revoked still work everywhere (within REVOCATION_MAX_STALENESS).
      const me = await Promise.all(urls.map((u, i) => call(u, "GET", "/me", { token: c.pairs[i === 0 ? 1 : i]!.accessToken })));
      expect(me.map((m) => m.status)).toEqual([200, 200, 200]);
    } finally {
      await redis.onEachServer(async (r) => {
        await r.call("ACL", "SETUSER", "default", "+subscribe", "+psubscribe", "+ssubscribe");
        await r.client("KILL", "TYPE", "pubsub"); // every subscriber (adapters too) starts clean
      });
    }
    await waitReadyz(urls, 200);
    // Back in sync: the resync found the logout, so the device's socket on node 1 is gone.
    await within(expectDropped(c.sockets[0]!, "logout"), 2000, "the logged-out device dropped");
    await Promise.all(c.bSockets.map((s, i) => expectAlive(s, c.bPairs[i]!)));
  });

  it("after the subscribers are back, revocations flow over the feed again", async () => {
    const c = await cast();
    await waitReadyz(urls, 200);
    const r = await call(urls[1]!, "POST", `/admin/users/${c.pairs[0]!.user.id}/kick`, { token: admin.accessToken, body: {} });
    expect(r.status).toBe(202);
    await within(Promise.all(c.sockets.map((s) => expectDropped(s, "kicked"))), 2000, "every covered socket dropped");
    await Promise.all(c.bSockets.map((s, i) => expectAlive(s, c.bPairs[i]!)));
  });
});
