/**
 * Rooms span nodes (contract section 4): a player on node 1 and one on node 2
 * in the same room see each other join, move (authoritative positions in
 * `state`), chat and leave, both ways; and tic-tac-toe players queued on
 * different nodes are matched, see each other's moves, and a disconnect forfeits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatMessage, PlayerView, StatePayload, TicTacToeState } from "../../shared/protocol";
import { register, uniqueName } from "../helpers/http";
import { connect, emitAck, nextEvent, type TestSocket } from "../helpers/sockets";
import { redisClient, startCluster, type LocalCluster } from "../helpers/cluster";
import { waitFor } from "../helpers/wait";

describe("rooms across two nodes", () => {
  let cluster: LocalCluster;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startCluster(2);
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
  });

  async function player(nodeIndex: number) {
    const url = cluster.nodes[nodeIndex]!.url;
    const pair = await register(url, uniqueName(`p${nodeIndex + 1}`));
    const s = await connect(url, pair.accessToken);
    open.push(s);
    return { pair, s, id: pair.user.id };
  }

  const at = (st: StatePayload, userId: string): PlayerView | undefined => st.players.find((p) => p.userId === userId);

  it("joins, positions, chat and leaves cross the node boundary both ways", async () => {
    const room = uniqueName("room").slice(0, 32);
    const a = await player(0);
    const b = await player(1);

    const joinA = await emitAck(a.s.socket, "room:join", { roomId: room });
    expect(joinA).toMatchObject({ ok: true, room: { id: room } });
    const aStart = joinA.you as PlayerView;

    // B joins on node 2: A (node 1) hears player:joined. B's ack lists B; node 2 listens to the
    // room's shares only from the moment it has a player there (the room bus: a node hears only the
    // rooms it holds players of), so A shows up in B's next `state` (checked below), in the ack
    // only if node 1's tick share already arrived.
    const aSeesJoin = nextEvent<PlayerView>(a.s.socket, "player:joined", 5000, (p) => p.userId === b.id);
    const joinB = await emitAck(b.s.socket, "room:join", { roomId: room });
    expect(joinB.ok).toBe(true);
    const inAck = joinB.room.players.map((p: PlayerView) => p.userId) as string[];
    expect(inAck).toContain(b.id);
    expect(inAck.every((id) => id === a.id || id === b.id)).toBe(true);
    expect(await aSeesJoin).toMatchObject({ userId: b.id, username: b.pair.user.username });
    const bStart = joinB.you as PlayerView;

    // Each node's state carries the other node's player, at the authoritative position.
    const [stA, stB] = await Promise.all([
      nextEvent<StatePayload>(a.s.socket, "state", 3000, (st) => at(st, b.id) !== undefined),
      nextEvent<StatePayload>(b.s.socket, "state", 3000, (st) => at(st, a.id) !== undefined),
    ]);
    expect(stA.roomId).toBe(room);
    expect(at(stA, b.id)).toMatchObject({ x: bStart.x, y: bStart.y });
    expect(at(stB, a.id)).toMatchObject({ x: aStart.x, y: aStart.y });

    // B moves: A sees the new position; A moves: B sees it.
    const movedB = await emitAck(b.s.socket, "move", { x: bStart.x > 400 ? 0 : 800, y: bStart.y });
    expect(movedB.ok).toBe(true);
    const aSeesMove = await nextEvent<StatePayload>(a.s.socket, "state", 3000, (st) => at(st, b.id)?.x === movedB.x);
    expect(at(aSeesMove, b.id)).toMatchObject({ x: movedB.x, y: movedB.y });
    const movedA = await emitAck(a.s.socket, "move", { x: aStart.x, y: aStart.y > 300 ? 0 : 600 });
    expect(movedA.ok).toBe(true);
    const bSeesMove = await nextEvent<StatePayload>(b.s.socket, "state", 3000, (st) => at(st, a.id)?.y === movedA.y);
    expect(at(bSeesMove, a.id)).toMatchObject({ x: movedA.x, y: movedA.y });

    // Chat both ways (the sender hears its own message too).
    const toA = nextEvent<ChatMessage>(a.s.socket, "chat:message", 5000, (m) => m.userId === b.id);
    const toBself = nextEvent<ChatMessage>(b.s.socket, "chat:message", 5000, (m) => m.userId === b.id);
    expect(await emitAck(b.s.socket, "chat:send", { text: "hello from node 2" })).toEqual({ ok: true });
    expect(await toA).toMatchObject({ userId: b.id, username: b.pair.user.username, text: "hello from node 2" });
    expect((await toBself).text).toBe("hello from node 2");
    const toB = nextEvent<ChatMessage>(b.s.socket, "chat:message", 5000, (m) => m.userId === a.id);
    expect(await emitAck(a.s.socket, "chat:send", { text: "hello from node 1" })).toEqual({ ok: true });
    expect(await toB).toMatchObject({ userId: a.id, text: "hello from node 1" });

    // B leaves (room:leave on node 2): A hears player:left and B drops out of A's state promptly.
    const aSeesLeave = nextEvent(a.s.socket, "player:left", 5000, (p: { userId: string }) => p.userId === b.id);
    expect(await emitAck(b.s.socket, "room:leave", {})).toEqual({ ok: true });
    await aSeesLeave;
    // Well under the 1 s after which a silent node's share is dropped: the leaving node says so at
    // once, before the player:left broadcast and on the same Redis connection, so in order.
    await nextEvent<StatePayload>(a.s.socket, "state", 700, (st) => at(st, b.id) === undefined);

    // B comes back, then A disconnects from node 1: B hears player:left and A drops out of B's state.
    const aSeesRejoin = nextEvent<PlayerView>(a.s.socket, "player:joined", 5000, (p) => p.userId === b.id);
    expect((await emitAck(b.s.socket, "room:join", { roomId: room })).ok).toBe(true);
    await aSeesRejoin;
    await nextEvent<StatePayload>(b.s.socket, "state", 3000, (st) => at(st, a.id) !== undefined);
    const bSeesLeave = nextEvent(b.s.socket, "player:left", 5000, (p: { userId: string }) => p.userId === a.id);
    a.s.close();
    await bSeesLeave;
    await nextEvent<StatePayload>(b.s.socket, "state", 700, (st) => at(st, a.id) === undefined);
  });

  it("two rooms do not leak into each other across nodes", async () => {
    const a = await player(0);
    const b = await player(1);
    await emitAck(a.s.socket, "room:join", { roomId: uniqueName("ra").slice(0, 32) });
    await emitAck(b.s.socket, "room:join", { roomId: uniqueName("rb").slice(0, 32) });
    const leaked: unknown[] = [];
    a.s.socket.on("chat:message", (m) => leaked.push(m));
    a.s.socket.on("player:joined", (m) => leaked.push(m));
    expect(await emitAck(b.s.socket, "chat:send", { text: "other room" })).toEqual({ ok: true });
    // A round of state ticks on A: it only ever holds A.
    for (let i = 0; i < 5; i++) {
      const st = await nextEvent<StatePayload>(a.s.socket, "state", 2000);
      expect(st.players.map((p) => p.userId)).toEqual([a.id]);
    }
    expect(leaked).toEqual([]);
  });

  it("a room's per-tick traffic goes only to the nodes with players in it", async () => {
    const room = uniqueName("solo").slice(0, 32);
    const channel = `gh:room:{arena:${room}}`;
    const r = redisClient(cluster.redis.url);
    const listeners = async () => Number(((await r.call("PUBSUB", "NUMSUB", channel)) as [string, number])[1]);
    try {
      const a = await player(0);
      const b = await player(1);
      expect((await emitAck(a.s.socket, "room:join", { roomId: room })).ok).toBe(true);
      // Node 1 shares the room every tick; node 2, with no player in it, does not listen: it receives none of it.
      await waitFor(async () => (await listeners()) === 1, { message: "node 1 listens to its room" });
      const probe = redisClient(cluster.redis.url);
      let shares = 0;
      probe.on("message", () => shares++);
      await probe.subscribe(channel);
      await waitFor(() => shares >= 3, { message: "node 1 publishes its share every tick" });
      await probe.quit();
      expect(await listeners()).toBe(1);

      // B joins on node 2: it listens now; when B leaves, it stops.
      expect((await emitAck(b.s.socket, "room:join", { roomId: room })).ok).toBe(true);
      await waitFor(async () => (await listeners()) === 2, { message: "node 2 listens once it has a player there" });
      expect(await emitAck(b.s.socket, "room:leave", {})).toEqual({ ok: true });
      await waitFor(async () => (await listeners()) === 1, { message: "node 2 stops listening when its last player left" });
    } finally {
      r.disconnect();
    }
  });

  // Tic-tac-toe, a second room type: one matchmaking queue for the cluster, moves replicated between nodes.
  const tttState = (p: { s: TestSocket }, pred: (st: TicTacToeState) => boolean) => nextEvent<TicTacToeState>(p.s.socket, "ttt:state", 5000, pred);

  it("matches players on different nodes, carries every move both ways, and a disconnect forfeits", async () => {
    const x = await player(0);
    const o = await player(1);
    expect(await emitAck(x.s.socket, "ttt:queue", {})).toMatchObject({ ok: true, status: "waiting" });
    const bothPlaying = Promise.all([tttState(x, (st) => st.status === "playing"), tttState(o, (st) => st.status === "playing")]);
    expect(await emitAck(o.s.socket, "ttt:queue", {})).toMatchObject({ ok: true, status: "matched" });
    const [stX, stO] = await bothPlaying;
    expect(stX.roomId).toBe(stO.roomId);
    expect(stO.players.find((p) => p.userId === x.id)?.mark).toBe("X");

    // Each move is seen on the other node before its player may answer.
    const moves: [typeof x, number][] = [[x, 4], [o, 0], [x, 8]];
    for (const [who, cell] of moves) {
      const peer = who === x ? o : x;
      const seen = tttState(peer, (st) => st.board[cell] !== "");
      expect(await emitAck(who.s.socket, "ttt:play", { cell })).toEqual({ ok: true });
      await seen;
    }
    const oNow = await emitAck(o.s.socket, "ttt:play", { cell: 4 });
    expect(oNow.error).toMatchObject({ code: "VALIDATION_FAILED", message: "Invalid cell: already taken" });

    // X's socket goes away on node 1: O, on node 2, wins by forfeit.
    const oWins = tttState(o, (st) => st.status === "over");
    x.s.close();
    expect((await oWins).result).toEqual({ winner: "O", reason: "forfeit" });
  });
});
