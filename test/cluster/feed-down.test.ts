/**
 * A node whose revocation feed cannot subscribe while its commands still work
 * (a proxy that refuses SUBSCRIBE; here a Redis ACL user without it, used only
 * by that node): contract section 5, "a node that is out of sync ... re-checks
 * its live sockets". A player connected there and banned / kicked /
 * session-revoked through another node is disconnected with the revocation's
 * reason within REVOCATION_MAX_STALENESS, though no event reaches the node.
 */
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNodeProcess, type NodeProcess } from "../../scripts/lib/node-process";
import { freePort } from "../helpers/redis-server";
import { call, login, register, uniqueName } from "../helpers/http";
import { connect, type TestSocket } from "../helpers/sockets";
import { within } from "../helpers/wait";
import { adminOf, expectAlive, expectDropped, redisClient, startCluster, waitReadyz, type LocalCluster } from "../helpers/cluster";

const STALENESS_MS = 5000; // the default REVOCATION_MAX_STALENESS

describe("a node whose feed is refused while its commands work", () => {
  let cluster: LocalCluster;
  let feedless: NodeProcess;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startCluster(1);
    const r = redisClient(cluster.redis.url);
    try {
      // Everything allowed for now: the node must start (and subscribe) normally.
      await r.call("ACL", "SETUSER", "feedless", "on", ">feedless-pw", "~*", "&*", "+@all");
    } finally {
      r.disconnect();
    }
    const url = cluster.redis.url.replace("redis://", "redis://feedless:feedless-pw@");
    feedless = await startNodeProcess({ port: await freePort(), env: { ...cluster.env, REDIS_URL: url } });
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await feedless?.stop();
    await cluster?.stop();
  });

  it("drops a banned, a kicked and a session-revoked player with their reasons within REVOCATION_MAX_STALENESS", async () => {
    const [n1, nx] = [cluster.nodes[0]!.url, feedless.url];
    await waitReadyz([n1, nx], 200);
    const admin = await adminOf(cluster, n1);
    const players = await Promise.all(["ban", "kick", "sess", "by"].map((p) => register(n1, uniqueName(p))));
    const [banned, kicked, revoked, bystander] = players as [typeof players[0], typeof players[0], typeof players[0], typeof players[0]];
    // The session-revoked player also has a second session, which must survive.
    const other = await login(n1, revoked.user.username, "password-123", "tablet");
    const sockets = await Promise.all([...players, other].map((p) => connect(nx, p.accessToken)));
    open.push(...sockets);

    const r = redisClient(cluster.redis.url);
    try {
      await r.call("ACL", "SETUSER", "feedless", "-subscribe", "-psubscribe", "-ssubscribe");
      await r.client("KILL", "USER", "feedless", "TYPE", "pubsub");
    } finally {
      r.disconnect();
    }
    await waitReadyz([nx], 503);
    await waitReadyz([n1], 200);

    const t0 = performance.now();
    const answers = await Promise.all([
      call(n1, "POST", `/admin/users/${banned.user.id}/ban`, { token: admin.accessToken, body: {} }),
      call(n1, "POST", `/admin/users/${kicked.user.id}/kick`, { token: admin.accessToken, body: {} }),
      call(n1, "POST", `/admin/sessions/${revoked.sessionId}/revoke`, { token: admin.accessToken, body: {} }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202]);
    await within(
      Promise.all([expectDropped(sockets[0]!, "banned"), expectDropped(sockets[1]!, "kicked"), expectDropped(sockets[2]!, "session_revoked")]),
      STALENESS_MS,
      "every covered socket dropped on the feedless node",
    );
    console.log(`feed refused: revocations -> covered sockets gone in ${(performance.now() - t0).toFixed(0)} ms`);
    // Not covered: the bystander and the revoked user's other session stay (still within the window).
    await expectAlive(sockets[3]!, bystander);
    await expectAlive(sockets[4]!, other);
  });
});
