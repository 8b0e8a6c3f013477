/**
 * Losing Redis (contract sections 1 and 5, REVOCATION_MAX_STALENESS=1s): while
 * it is down the nodes say 503 on /readyz and, past the staleness window,
 * refuse new handshakes and authenticated requests with REVOCATION_UNAVAILABLE,
 * yet keep the sockets they hold (players in a room keep playing on their
 * node). Redis then comes back on the same port EMPTY (no persistence): the
 * nodes recover by themselves, and since the store lost every revocation,
 * account and session, every token issued before the loss is revoked
 * cluster-wide (`revoked_all`), so no node vouches for a token the store can
 * no longer vouch for. New accounts work at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOPOLOGIES, redisUnderTest, startClusterOn } from "../helpers/topologies";
import type { TokenPair } from "../../shared/claims";
import { hashPassword } from "../../server/auth/passwords";
import { RedisStore } from "../../server/store/redis";
import { call, register, uniqueName } from "../helpers/http";
import { connect, emitAck, nextEvent, refusedCode, type TestSocket } from "../helpers/sockets";
import { waitFor } from "../helpers/wait";
import {
  adminOf,
  expectAcceptedEverywhere,
  expectAlive,
  expectDropped,
  expectRefusedEverywhere,
  waitReadyz,
  type AnyLocalCluster,
} from "../helpers/cluster";

describe.each(TOPOLOGIES)("Redis stops, then restarts empty, on $name", (topology) => {
  let cluster: AnyLocalCluster;
  let urls: string[];
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startClusterOn(topology, 2, { REVOCATION_MAX_STALENESS: "1s" });
    urls = cluster.nodes.map((n) => n.url);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
  });

  it("outage: 503s past the staleness window, existing sockets stay; back empty: nodes recover, old tokens revoked, new ones work", async () => {
    const [n1, n2] = urls as [string, string];
    // Before: a revocation (so the store has a sequence to lose), players in a room on both nodes.
    const admin = await adminOf(cluster, n1);
    const kicked = await register(n1);
    expect((await call(n1, "POST", `/admin/users/${kicked.user.id}/kick`, { token: admin.accessToken, body: {} })).status).toBe(202);
    const a = await register(n1, uniqueName("a"));
    const b = await register(n2, uniqueName("b"));
    const [sa, sb] = await Promise.all([connect(n1, a.accessToken), connect(n2, b.accessToken)]);
    open.push(sa, sb);
    expect(await emitAck(sa.socket, "room:join", { roomId: "outage" })).toMatchObject({ ok: true });
    expect(await emitAck(sb.socket, "room:join", { roomId: "outage" })).toMatchObject({ ok: true });
    await waitReadyz(urls, 200);

    // ---- Redis goes away ----
    await redisUnderTest(cluster).stop();
    await waitReadyz(urls, 503);
    // Past REVOCATION_MAX_STALENESS: authenticated HTTP and new handshakes are refused (503), on every node.
    for (const url of urls) {
      await waitFor(async () => (await call(url, "GET", "/me", { token: a.accessToken })).status === 503, { timeoutMs: 5000, message: `${url} /me 503` });
      const me = await call(url, "GET", "/me", { token: a.accessToken });
      expect(me.body.error.code).toBe("REVOCATION_UNAVAILABLE");
      const hs = await refusedCode(url, a.accessToken, { reconnection: false });
      expect(hs).toMatchObject({ message: "REVOCATION_UNAVAILABLE", data: { code: "REVOCATION_UNAVAILABLE" } });
    }
    // Existing sockets stay connected and keep playing on their node (the game tick keeps running).
    for (const s of [sa, sb]) {
      expect(s.socket.connected).toBe(true);
      expect(s.revocations).toEqual([]);
      expect(await emitAck(s.socket, "move", { x: 400, y: 300 })).toMatchObject({ ok: true });
      await nextEvent(s.socket, "state", 2000);
      // The in-band refresh is a check like any other: refused while revocation state is unavailable.
      expect(await emitAck(s.socket, "auth:refresh", { token: (s === sa ? a : b).accessToken })).toMatchObject({
        ok: false,
        error: { code: "REVOCATION_UNAVAILABLE" },
      });
    }
    // Still alive after a few seconds of outage (no crash from unanswered Redis commands).
    await waitFor(async () => (await call(n1, "GET", "/healthz")).status === 200);
    for (const n of cluster.nodes) expect(n.proc.exitCode, n.nodeId).toBeNull();

    // ---- Redis comes back on the same port, empty ----
    await redisUnderTest(cluster).restart();
    await waitReadyz(urls, 200, 15_000);
    for (const n of cluster.nodes) expect(n.proc.exitCode, n.nodeId).toBeNull();

    // The store lost every revocation, account and session: tokens issued before are revoked
    // cluster-wide, their sockets told why, refused on every node.
    await Promise.all([expectDropped(sa, "revoked_all"), expectDropped(sb, "revoked_all")]);
    for (const pair of [a, b, kicked, admin]) await expectRefusedEverywhere(urls, pair, "TOKEN_REVOKED");
    const refresh = await call(n2, "POST", "/auth/refresh", { body: { refreshToken: a.refreshToken } });
    expect(refresh.body.error.code).toBe("REFRESH_INVALID");

    // New accounts work at once, across nodes (registration on one, handshake on the other).
    const fresh: TokenPair = await register(n1, uniqueName("after"));
    await expectAcceptedEverywhere(urls, fresh);
    const sf = await connect(n2, fresh.accessToken);
    open.push(sf);
    await expectAlive(sf, fresh);
    // The admin account is back too (recreated from ADMIN_USERNAME / ADMIN_PASSWORD) and can act cluster-wide.
    const admin2 = await adminOf(cluster, n2);
    const r = await call(n1, "POST", `/admin/users/${fresh.user.id}/kick`, { token: admin2.accessToken, body: {} });
    expect(r.status).toBe(202);
    await expectDropped(sf, "kicked");
  });

  it("a hung Redis (SIGSTOP, connections stay open): detected, 503 past the staleness window instead of hanging; SIGCONT: recovered", async () => {
    const [n1, n2] = urls as [string, string];
    await waitReadyz(urls, 200, 15_000);
    const p = await register(n1, uniqueName("hang"));
    const s = await connect(n2, p.accessToken);
    open.push(s);
    redisUnderTest(cluster).pause();
    try {
      // Nothing drops: the nodes notice only because their calls time out.
      await waitReadyz(urls, 503);
      for (const url of urls) {
        await waitFor(async () => (await call(url, "GET", "/me", { token: p.accessToken })).status === 503, { timeoutMs: 10_000, message: `${url} /me 503` });
        expect(await refusedCode(url, p.accessToken, { reconnection: false })).toMatchObject({ message: "REVOCATION_UNAVAILABLE" });
      }
      // A call that needs Redis answers 503 (after the command timeout) rather than hanging.
      const guest = await call(n1, "POST", "/auth/guest", { body: {} });
      expect(guest.status).toBe(503);
      expect(guest.body.error.code).toBe("REVOCATION_UNAVAILABLE");
      expect(s.socket.connected).toBe(true);
    } finally {
      redisUnderTest(cluster).resume();
    }
    await waitReadyz(urls, 200, 15_000);
    await expectAcceptedEverywhere(urls, p);
    await expectAlive(s, p);
  });

  it("back empty with a player holding the admin's name: one reset revocation per node, ready again, one clear error; no revoke-all loop", async () => {
    const [n1, n2] = urls as [string, string];
    await waitReadyz(urls, 200, 15_000);
    const before = await register(n1, uniqueName("pre"));
    const s = await connect(n2, before.accessToken);
    open.push(s);
    const resetLines = () => cluster.nodes.map((n) => n.output.filter((l) => l.includes("store lost revocation state")).length);
    const adminErrors = () => cluster.nodes.map((n) => n.output.filter((l) => l.includes('"level":50') && l.includes("ADMIN_USERNAME")).length);
    const resetsBefore = resetLines();
    const errorsBefore = adminErrors();

    // Nodes frozen while Redis comes back empty, so the player takes the admin's name first.
    for (const n of cluster.nodes) n.proc.kill("SIGSTOP");
    try {
      await redisUnderTest(cluster).restart();
      const store = await RedisStore.connect(cluster.topology === "single" ? { url: cluster.redis.url } : { clusterNodes: cluster.redisCluster.urls });
      try {
        const now = Date.now();
        await store.createUser({
          id: `squatter-${now}`,
          username: cluster.admin.username,
          role: "player",
          passwordHash: await hashPassword("squatter-password"),
          guest: false,
          createdAt: now,
          version: 0,
          tokenValidAfter: 0,
          ban: null,
        });
      } finally {
        await store.close();
      }
    } finally {
      for (const n of cluster.nodes) n.proc.kill("SIGCONT");
    }

    await waitReadyz(urls, 200, 15_000);
    await expectDropped(s, "revoked_all");
    // Each node found the loss once and wrote one reset revocation: seq = one global event per node.
    const r = redisUnderTest(cluster).client();
    try {
      const seqAtReady = Number(await r.get("gh:seq:{g}"));
      expect(seqAtReady).toBeLessThanOrEqual(cluster.nodes.length);
      // A loop re-runs the resync every 250 ms: watch a few of those periods (nothing to await here).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(Number(await r.get("gh:seq:{g}"))).toBe(seqAtReady);
    } finally {
      r.disconnect();
    }
    await waitReadyz(urls, 200);
    resetLines().forEach((n, i) => expect(n - resetsBefore[i]!, `node ${i + 1} found the loss once`).toBe(1));
    await waitFor(() => adminErrors().every((n, i) => n - errorsBefore[i]! === 1), { message: "one admin error per node" });
    // The name stays the player's (never promoted), and the cluster works.
    expect((await call(n1, "POST", "/auth/login", { body: { username: cluster.admin.username, password: cluster.admin.password } })).status).toBe(401);
    await expectRefusedEverywhere(urls, before, "TOKEN_REVOKED");
    const fresh = await register(n2, uniqueName("post"));
    await expectAcceptedEverywhere(urls, fresh);
  });
});
