/**
 * Redis Cluster failover (contract section 5, "Failover"; issue 9): a revocation answered 2xx was
 * replicated before the answer (WAIT for a replica on each primary it wrote to), or it is answered
 * 503 REVOCATION_UNAVAILABLE. Two interleavings, on 2 child-process nodes over a local Redis
 * Cluster (3 primaries + 3 replicas, cluster-node-timeout 2 s, replica validity factor 0):
 *
 * 1. revocations answered 2xx, then the primary they all wrote to SIGKILLed at once: after its
 *    replica took over, a node started from scratch refuses every revoked token;
 * 2. a primary's only replica frozen (SIGSTOP) while revocations are issued (those touching that
 *    shard cannot be replicated: 503, the others 2xx), then that primary killed and the replica
 *    resumed (it takes over, without the unreplicated writes): no revocation answered 2xx is lost,
 *    and a 503 one retried afterwards takes effect.
 *
 * Both end with the nodes ready again by themselves and a kick reaching every node.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import type { RedisProcess } from "../../scripts/lib/redis-server";
import { call, login, register, uniqueName } from "../helpers/http";
import { connect, type TestSocket } from "../helpers/sockets";
import { adminOf, expectDropped, expectRefusedEverywhere, startCluster, waitReadyz, type LocalClusterOnRedisCluster } from "../helpers/cluster";

/** A revocation of one user's token: how to issue it, and what the token is refused with after. */
type Revoke = { name: string; code: string; run(via: string, victim: TokenPair, admin: TokenPair): Promise<{ status: number; body: any }> };
const REVOKES: Revoke[] = [
  { name: "kick", code: "TOKEN_REVOKED", run: (via, v, a) => call(via, "POST", `/admin/users/${v.user.id}/kick`, { token: a.accessToken, body: {} }) },
  { name: "ban", code: "TOKEN_REVOKED", run: (via, v, a) => call(via, "POST", `/admin/users/${v.user.id}/ban`, { token: a.accessToken, body: {} }) },
  { name: "logout", code: "TOKEN_REVOKED", run: (via, v) => call(via, "POST", "/auth/logout", { token: v.accessToken }) },
  { name: "logout-all", code: "TOKEN_REVOKED", run: (via, v) => call(via, "POST", "/auth/logout-all", { token: v.accessToken }) },
  { name: "admin session revoke", code: "SESSION_REVOKED", run: (via, v, a) => call(via, "POST", `/admin/sessions/${encodeURIComponent(v.sessionId)}/revoke`, { token: a.accessToken, body: {} }) },
  { name: "password change", code: "TOKEN_REVOKED", run: (via, v) => call(via, "POST", "/auth/password", { token: v.accessToken, body: { oldPassword: "password-123", newPassword: "password-456" } }) },
];
const answered2xx = (status: number) => status >= 200 && status < 300;

describe("Redis Cluster failover: no revocation answered 2xx is lost", () => {
  let cluster: LocalClusterOnRedisCluster;
  let urls: string[];
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startCluster(2, { REVOCATION_MAX_STALENESS: "5s" }, { redisCluster: true });
    urls = cluster.nodes.map((n) => n.url);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
  });

  const shardOfUser = (userId: string) => cluster.redisCluster.shardOf(`{${userId}}`);

  /** Kills `primaries`, waits until their replicas serve every slot and the nodes are ready again. */
  async function failOver(primaries: RedisProcess[], beforeFailover: () => void = () => undefined): Promise<void> {
    await Promise.all(primaries.map((p) => p.kill()));
    beforeFailover();
    await cluster.redisCluster.waitUntilHealthy({ replicas: 0, timeoutMs: 30_000 });
    await waitReadyz(urls, 200, 30_000);
  }

  /** The killed servers come back (as replicas of the new primaries) for the next test. */
  async function heal(servers: RedisProcess[]): Promise<void> {
    await Promise.all(servers.map((s) => s.restart()));
    await cluster.redisCluster.waitUntilHealthy({ timeoutMs: 30_000 });
  }

  /** A user with a socket on every node is kicked: every socket drops (the feed works on the new primaries). */
  async function kickReachesEveryNode(admin: TokenPair): Promise<void> {
    const name = uniqueName("after");
    await register(urls[0]!, name);
    const pairs = await Promise.all(urls.map((u, i) => login(u, name, "password-123", `d${i}`)));
    const sockets = await Promise.all(pairs.map((p, i) => connect(urls[i]!, p.accessToken)));
    open.push(...sockets);
    const r = await call(urls[1]!, "POST", `/admin/users/${pairs[0]!.user.id}/kick`, { token: admin.accessToken, body: {} });
    expect(r.status).toBe(202);
    await Promise.all(sockets.map((s) => expectDropped(s, "kicked")));
  }

  it("revocations answered 2xx, then their primary SIGKILLed at once: a node started after the failover refuses every revoked token", async () => {
    const [n1, n2] = urls as [string, string];
    let admin = await adminOf(cluster, n1);
    // Victims whose slot is on the primary of {g}: every write of their revocations went to that
    // one primary, killed right after the answers (a cluster fails over one primary at a time: the
    // others vote).
    const g = await cluster.redisCluster.shardOf("{g}");
    const victims: TokenPair[] = [];
    while (victims.length < REVOKES.length) {
      const p = await register(n1, uniqueName("fo"));
      if ((await shardOfUser(p.user.id)).primary === g.primary) victims.push(p);
    }
    const answers = await Promise.all(REVOKES.map((rv, i) => rv.run(i % 2 ? n1 : n2, victims[i]!, admin)));
    expect(answers.map((a) => a.status).every(answered2xx), JSON.stringify(answers.map((a) => a.body))).toBe(true);
    const primaries = [g.primary];
    await failOver(primaries);

    // A node that never saw these revocations loads its state from the promoted replicas.
    const fresh = await cluster.addNode();
    const all = [...urls, fresh.url];
    await waitReadyz(all, 200, 30_000);
    for (const [i, rv] of REVOKES.entries()) {
      await expectRefusedEverywhere(all, victims[i]!, rv.code);
      const refresh = await call(fresh.url, "POST", "/auth/refresh", { body: { refreshToken: victims[i]!.refreshToken } });
      expect(refresh.status, `${rv.name}: its refresh token`).toBeGreaterThanOrEqual(400);
    }
    admin = await adminOf(cluster, n2);
    await kickReachesEveryNode(admin);
    await heal(primaries);
  }, 120_000);

  it("a primary's only replica frozen during revocations, then the primary killed and the replica resumed: every 2xx holds, the 503 ones retried take effect", async () => {
    const [n1, n2] = urls as [string, string];
    const admin = await adminOf(cluster, n1);
    // The frozen shard must not be the one of {g} (every revocation writes there) nor the admin's.
    const g = await cluster.redisCluster.shardOf("{g}");
    const adminShard = await shardOfUser(admin.user.id);
    const target = (await cluster.redisCluster.shards()).find((s) => s.primary !== g.primary && s.primary !== adminShard.primary && s.replicas.length === 1);
    expect(target, "a shard holding neither {g} nor the admin").toBeDefined();
    const { primary, replicas } = target!;
    // Users on the frozen shard, and users elsewhere: one of each per kind of revocation.
    const onShard: TokenPair[] = [];
    const elsewhere: TokenPair[] = [];
    while (onShard.length < REVOKES.length || elsewhere.length < REVOKES.length) {
      const p = await register(n2, uniqueName("fz"));
      const list = (await shardOfUser(p.user.id)).primary === primary ? onShard : elsewhere;
      if (list.length < REVOKES.length) list.push(p);
    }

    replicas[0]!.pause();
    let resumed = false;
    try {
      const run = (victims: TokenPair[]) => Promise.all(REVOKES.map((rv, i) => rv.run(i % 2 ? n1 : n2, victims[i]!, admin)));
      const [frozenAnswers, otherAnswers] = await Promise.all([run(onShard), run(elsewhere)]);
      // Not replicable: refused with 503, never a 2xx that a failover could undo.
      for (const [i, a] of frozenAnswers.entries()) expect(a, `${REVOKES[i]!.name}: ${JSON.stringify(a.body)}`).toMatchObject({ status: 503, body: { error: { code: "REVOCATION_UNAVAILABLE" } } });
      expect(otherAnswers.map((a) => a.status).every(answered2xx), JSON.stringify(otherAnswers.map((a) => a.body))).toBe(true);

      await failOver([primary], () => {
        replicas[0]!.resume();
        resumed = true;
      });
    } finally {
      if (!resumed) replicas[0]!.resume();
    }

    // Every revocation answered 2xx is still in force, on every node and on one started now.
    const fresh = await cluster.addNode();
    const all = [...cluster.nodes.map((n) => n.url)];
    await waitReadyz(all, 200, 30_000);
    for (const [i, rv] of REVOKES.entries()) await expectRefusedEverywhere(all, elsewhere[i]!, rv.code);
    // A 503 one may or may not have been applied (here the frozen replica usually still had it in
    // its socket buffer when resumed): retried on the new primary, it takes effect, or its token
    // is refused already (a logout needs a live token; a revoked session is not found).
    const admin2 = await adminOf(cluster, fresh.url);
    const retried = await Promise.all(REVOKES.map((rv, i) => rv.run(fresh.url, onShard[i]!, admin2)));
    for (const [i, a] of retried.entries()) {
      const settled = answered2xx(a.status) || ["TOKEN_REVOKED", "SESSION_REVOKED", "NOT_FOUND"].includes(a.body?.error?.code);
      expect(settled, `${REVOKES[i]!.name} retried: ${a.status} ${JSON.stringify(a.body)}`).toBe(true);
    }
    for (const [i, rv] of REVOKES.entries()) await expectRefusedEverywhere(all, onShard[i]!, rv.code);
    await kickReachesEveryNode(admin2);
    await heal([primary]);
  }, 120_000);
});
