/**
 * Nodes going away: a crash (SIGKILL) leaves the others serving, revocations
 * still reach the survivors' sockets, and the dead node's players leave the
 * admin view once its presence expires; a graceful stop (SIGTERM) exits 0
 * quickly, closes its sockets as a transport close (no session:revoked, no
 * server disconnect) so a client behind a load balancer reconnects to another
 * node by itself, with the same token.
 */
import { Agent, get } from "node:http";
import { createServer, connect as tcpConnect, type Server, type Socket as TcpSocket } from "node:net";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TOPOLOGIES, startClusterOn } from "../helpers/topologies";
import type { TokenPair } from "../../shared/claims";
import type { OnlinePlayer } from "../../shared/protocol";
import { call, login, register, uniqueName } from "../helpers/http";
import { connect, emitAck, nextEvent, type TestSocket } from "../helpers/sockets";
import { waitFor, within } from "../helpers/wait";
import {
  adminOf,
  expectAlive,
  expectDropped,
  readyz,
  waitReadyz,
  type AnyLocalCluster,
  type NodeProcess,
} from "../helpers/cluster";

/**
 * A TCP load balancer for the test: each connection goes to the first upstream
 * that accepts it (websocket-only clients need no stickiness).
 */
async function tcpBalancer(ports: number[]): Promise<{ url: string; close(): Promise<void> }> {
  const conns = new Set<TcpSocket>();
  const server: Server = createServer((client) => {
    conns.add(client);
    client.pause();
    const tryUpstream = (i: number) => {
      if (i >= ports.length) return void client.destroy();
      const up = tcpConnect(ports[i]!, "127.0.0.1");
      up.once("error", () => tryUpstream(i + 1));
      up.once("connect", () => {
        conns.add(up);
        up.removeAllListeners("error");
        const end = () => {
          client.destroy();
          up.destroy();
        };
        up.on("error", end).on("close", end);
        client.on("error", end).on("close", end);
        client.pipe(up).pipe(client);
        client.resume();
      });
    };
    tryUpstream(0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        conns.forEach((c) => c.destroy());
        server.close(() => resolve());
      }),
  };
}

/**
 * A load balancer's health checker: /readyz back to back over two keep-alive
 * connections until the node stops answering. Returns what each checker saw, in order.
 */
function healthChecker(url: string): { stop(): Promise<number[][]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  let running = true;
  const probe = () =>
    new Promise<number>((resolve) => {
      const req = get(`${url}/readyz`, { agent }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", () => resolve(0));
    });
  const loop = async () => {
    const seen: number[] = [];
    while (running) {
      const st = await probe();
      seen.push(st);
      if (st === 0) break;
    }
    return seen;
  };
  const loops = [loop(), loop()];
  return {
    stop: async () => {
      running = false;
      const seen = await Promise.all(loops);
      agent.destroy();
      return seen;
    },
  };
}

describe.each(TOPOLOGIES)("node crash and graceful stop, on $name", (topology) => {
  let cluster: AnyLocalCluster;
  let nodes: NodeProcess[];
  let admin: TokenPair;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startClusterOn(topology, 3);
    nodes = cluster.nodes;
    admin = await adminOf(cluster, nodes[0]!.url);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
  });

  async function players(): Promise<OnlinePlayer[]> {
    const r = await call<OnlinePlayer[]>(nodes[0]!.url, "GET", "/admin/players", { token: admin.accessToken });
    expect(r.status).toBe(200);
    return r.body;
  }

  it("SIGKILL: survivors keep serving and revoking; the dead node's players leave /admin/players", async () => {
    const [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    // A user with a device on every node; another user only on the node that will die.
    const username = uniqueName("crash");
    await register(n1.url, username);
    const pairs = await Promise.all(nodes.map((n, i) => login(n.url, username, "password-123", `dev${i}`)));
    const sockets = await Promise.all(pairs.map((p, i) => connect(nodes[i]!.url, p.accessToken)));
    const loner = await register(n3.url);
    const lonerSocket = await connect(n3.url, loner.accessToken);
    open.push(...sockets, lonerSocket);
    const userId = pairs[0]!.user.id;
    await waitFor(async () => {
      const list = await players();
      const mine = list.find((p) => p.userId === userId);
      return mine?.sessions.length === 3 && list.some((p) => p.userId === loner.user.id);
    }, { message: "all players listed" });

    // Two of the devices share a room across nodes 1 and 3.
    await emitAck(sockets[0]!.socket, "room:join", { roomId: "crash-room" });
    const on3 = await emitAck(sockets[2]!.socket, "room:join", { roomId: "crash-room" });
    const heardLeft = new Promise<void>((resolve) =>
      sockets[0]!.socket.on("player:left", (p: { playerId: string }) => p.playerId === on3.you.playerId && resolve()),
    );

    const lonerGone = nextEvent<string>(lonerSocket.socket, "disconnect", 5000);
    await n3.kill();
    expect(n3.proc.signalCode).toBe("SIGKILL");
    expect(await lonerGone).toBe("transport close"); // the client will try to reconnect (elsewhere, behind a load balancer)
    lonerSocket.close();
    sockets[2]!.close();

    // The dead node sent no player:left: node 1 tells its player once node 3's share of the room goes stale.
    await within(heardLeft, 5000, "node 1's player heard that node 3's player left");

    // Survivors serve: ready, new accounts and handshakes.
    await waitReadyz([n1.url, n2.url], 200);
    const fresh = await register(n2.url);
    const sf = await connect(n1.url, fresh.accessToken);
    open.push(sf);
    await expectAlive(sf, fresh);

    // The dead node's players leave the admin view once its presence expires (6 s, no heartbeat).
    const t0 = performance.now();
    await waitFor(
      async () => {
        const list = await players();
        const mine = list.find((p) => p.userId === userId);
        return !list.some((p) => p.userId === loner.user.id) && mine?.sessions.length === 2 && mine.sessions.every((s) => s.nodeId !== n3.nodeId);
      },
      { timeoutMs: 10_000, intervalMs: 250, message: "dead node's players dropped from /admin/players" },
    );
    console.log(`SIGKILL: the dead node's players left /admin/players after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const mine = (await players()).find((p) => p.userId === userId)!;
    expect(mine.sessions.map((s) => s.nodeId).sort()).toEqual([n1.nodeId, n2.nodeId].sort());

    // Revocations still reach the survivors' sockets (issued on node 2, user on nodes 1 and 2).
    const r = await call(n2.url, "POST", `/admin/users/${userId}/kick`, { token: admin.accessToken, body: {} });
    expect(r.status).toBe(202);
    await Promise.all([expectDropped(sockets[0]!, "kicked"), expectDropped(sockets[1]!, "kicked")]);
    await expectAlive(sf, fresh);
  });

  it("SIGTERM: exit 0 within 10 s, sockets closed as a transport close, the client reconnects to another node with its token", async () => {
    const [n1, n2] = nodes as [NodeProcess, NodeProcess];
    // The client reaches the cluster through a balancer preferring node 2, falling back to node 1.
    const lb = await tcpBalancer([n2.port, n1.port]);
    try {
      const pair = await register(n2.url);
      const s = await connect(lb.url, pair.accessToken, { reconnectionDelay: 50, reconnectionDelayMax: 200 });
      open.push(s);
      const direct = await connect(n2.url, (await login(n2.url, pair.user.username, "password-123", "direct")).accessToken, { reconnection: false });
      open.push(direct);
      const onNode = async () => (await players()).find((p) => p.userId === pair.user.id)?.sessions.map((x) => x.nodeId) ?? [];
      await waitFor(async () => (await onNode()).filter((id) => id === n2.nodeId).length === 2, { message: "both sockets on node 2" });

      const disconnects: string[] = [];
      s.socket.on("disconnect", (why) => disconnects.push(why));
      const directGone = nextEvent<string>(direct.socket, "disconnect", 10_000);
      const reconnected = nextEvent(s.socket, "connect", 10_000);
      // A balancer's health checks keep hitting /readyz over keep-alive connections during the stop.
      const checker = healthChecker(n2.url);
      await waitFor(async () => (await readyz(n2.url)) === 200);
      const t0 = performance.now();
      const code = await n2.stop();
      const took = performance.now() - t0;
      const seen = await checker.stop();
      // Once a checker saw it stopping, never 200 again: 503 while stopping, then refused.
      for (const statuses of seen) {
        const firstDown = statuses.findIndex((st) => st !== 200);
        expect(firstDown).toBeGreaterThanOrEqual(0);
        expect(statuses.slice(firstDown).every((st) => st === 503 || st === 0), statuses.slice(firstDown).join(",")).toBe(true);
        expect(statuses.at(-1)).toBe(0);
      }
      const n503 = seen.flat().filter((st) => st === 503).length;
      console.log(`SIGTERM: node exited with ${code} after ${took.toFixed(0)} ms under back-to-back health checks (${n503} x 503 while stopping, then refused)`);
      expect(code).toBe(0);
      expect(took).toBeLessThan(10_000);
      expect(await readyz(n2.url)).toBe(0);

      // A transport close, not a server disconnect: nothing revoked, the client reconnects by itself.
      expect(await directGone).toBe("transport close");
      expect(direct.revocations).toEqual([]);
      await reconnected;
      expect(disconnects).toEqual(["transport close"]);
      expect(s.revocations).toEqual([]);
      await expectAlive(s, pair);
      expect(await onNode()).toContain(n1.nodeId);
      expect(await emitAck(s.socket, "room:join", { roomId: "after-deploy" })).toMatchObject({ ok: true });

      // And the plain way: the same token straight to another node.
      const again = await connect(n1.url, pair.accessToken);
      open.push(again);
      await expectAlive(again, pair);
      // The stopped node left the admin view at once (it removed its presence on the way out).
      expect((await onNode()).every((id) => id !== n2.nodeId)).toBe(true);
    } finally {
      await lb.close();
    }
  });
});
