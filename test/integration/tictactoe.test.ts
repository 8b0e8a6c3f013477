/** Tic-tac-toe over real sockets on one node: matchmaking, turns, a win, refusals, and a revoked player's forfeit. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatehouseClient } from "../../client/sdk";
import type { TicTacToeState, TicTacToeYou } from "../../shared/protocol";
import { call, register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { connect, emitAck, nextEvent, type TestSocket } from "../helpers/sockets";

describe("tic-tac-toe on one node", () => {
  let node: TestNode;
  const open: TestSocket[] = [];
  beforeAll(async () => {
    node = await startNode();
  });
  afterAll(async () => {
    open.forEach((s) => s.close());
    await node?.close();
  });

  async function player() {
    const pair = await register(node.url);
    const s = await connect(node.url, pair.accessToken);
    open.push(s);
    return { pair, s, id: pair.user.id };
  }

  /** Two players queued one after the other: the first waits, the second is matched; the first plays X. */
  async function match() {
    const x = await player();
    const o = await player();
    expect(await emitAck(x.s.socket, "ttt:queue", {})).toEqual({ ok: true, status: "waiting" });
    const xPlaying = nextEvent<TicTacToeState>(x.s.socket, "ttt:state", 5000, (st) => st.status === "playing");
    const oPlaying = nextEvent<TicTacToeState>(o.s.socket, "ttt:state", 5000, (st) => st.status === "playing");
    const xMatched = nextEvent(x.s.socket, "ttt:matched");
    expect(await emitAck(o.s.socket, "ttt:queue", {})).toMatchObject({ ok: true, status: "matched" });
    const [matched, stX] = await Promise.all([xMatched, xPlaying, oPlaying]);
    expect(matched.you).toMatchObject({ userId: x.id, mark: "X" });
    return { x, o, roomId: stX.roomId };
  }

  const play = (p: { s: TestSocket }, cell: unknown) => emitAck(p.s.socket, "ttt:play", { cell });

  it("two queued players are matched and play to a win; each sees the board and whose turn it is", async () => {
    const { x, o, roomId } = await match();
    const oTurn = nextEvent<TicTacToeYou>(o.s.socket, "ttt:you", 5000, (y) => y.yourTurn);
    expect(await play(x, 0)).toEqual({ ok: true });
    expect(await oTurn).toEqual({ roomId, mark: "O", yourTurn: true });
    expect(await play(o, 3)).toEqual({ ok: true });
    expect(await play(x, 1)).toEqual({ ok: true });
    expect(await play(o, 4)).toEqual({ ok: true });
    const oSeesEnd = nextEvent<TicTacToeState>(o.s.socket, "ttt:state", 5000, (st) => st.status === "over");
    expect(await play(x, 2)).toEqual({ ok: true });
    const end = await oSeesEnd;
    expect(end.board).toEqual(["X", "X", "X", "O", "O", "", "", "", ""]);
    expect(end.result).toEqual({ winner: "X", reason: "line", line: [0, 1, 2] });
    expect(end.players.map((p) => [p.userId, p.mark]).sort()).toEqual([[x.id, "X"], [o.id, "O"]].sort());
    expect((await play(o, 5)).error.code).toBe("FORBIDDEN");
  });

  it("refuses moves out of turn, on taken cells and bad payloads, naming the field, and keeps playing", async () => {
    const { x, o } = await match();
    expect(await play(o, 0)).toMatchObject({ ok: false, error: { code: "FORBIDDEN", message: "It is not your turn." } });
    expect(await play(x, 4)).toEqual({ ok: true });
    expect(await play(o, 4)).toMatchObject({ ok: false, error: { code: "VALIDATION_FAILED", message: "Invalid cell: already taken" } });
    for (const bad of [9, -1, 1.5, "3", null]) {
      const r = await play(o, bad);
      expect(r.error.code).toBe("VALIDATION_FAILED");
      expect(r.error.message).toMatch(/^Invalid cell: /);
    }
    expect((await emitAck(o.s.socket, "ttt:play", null)).error.message).toMatch(/^Invalid payload: /);
    expect(await play(o, 0)).toEqual({ ok: true });
    // Not in a game: refused, not crashed.
    const loner = await player();
    expect((await play(loner, 0)).error.code).toBe("VALIDATION_FAILED");
  });

  it("a revoked player forfeits: the opponent wins, with no revocation code in the game", async () => {
    const { x, o } = await match();
    const oWins = nextEvent<TicTacToeState>(o.s.socket, "ttt:state", 5000, (st) => st.status === "over");
    await call(node.url, "POST", "/auth/logout", { token: x.pair.accessToken });
    expect((await x.s.revoked).reason).toBe("logout");
    const end = await oWins;
    expect(end.result).toEqual({ winner: "O", reason: "forfeit" });
    expect(end.players.map((p) => p.userId)).toEqual([o.id]);
  });

  it("leaving the queue means nobody is matched with you; the same user is never matched with itself", async () => {
    const a = await player();
    expect(await emitAck(a.s.socket, "ttt:queue", {})).toMatchObject({ status: "waiting" });
    expect(await emitAck(a.s.socket, "ttt:leave", {})).toEqual({ ok: true });
    const twin = await connect(node.url, a.pair.accessToken);
    open.push(twin);
    expect(await emitAck(twin.socket, "ttt:queue", {})).toMatchObject({ status: "waiting" });
    const b = await player();
    const twinMatched = nextEvent(twin.socket, "ttt:matched");
    expect(await emitAck(b.s.socket, "ttt:queue", {})).toMatchObject({ status: "matched" });
    expect((await twinMatched).you.playerId).toBe(twin.socket.id);
    await expect(nextEvent(a.s.socket, "ttt:matched", 300)).rejects.toThrow(/timed out/);
  });

  it("the SDK plays it: queue, matched, play, refusals as coded errors, leave", async () => {
    const [a, b] = [new GatehouseClient({ baseUrl: node.url }), new GatehouseClient({ baseUrl: node.url })];
    try {
      await Promise.all([a.guest(), b.guest()]);
      const [sa, sb] = await Promise.all([a.connect(), b.connect()]);
      expect(await a.queueTicTacToe()).toMatchObject({ status: "waiting" });
      const aMatched = new Promise((resolve) => sa.once("ttt:matched", resolve));
      const bYou = new Promise<TicTacToeYou>((resolve) => sb.on("ttt:you", (y) => y.yourTurn === false && resolve(y)));
      expect(await b.queueTicTacToe()).toMatchObject({ status: "matched" });
      await aMatched;
      expect((await bYou).mark).toBe("O");
      await a.playTicTacToe(4);
      await expect(a.playTicTacToe(0)).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(b.send("ttt:play", { cell: "x" })).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
      const aWins = new Promise<TicTacToeState>((resolve) => sa.on("ttt:state", (st) => st.status === "over" && resolve(st)));
      await b.leaveTicTacToe();
      expect((await aWins).result).toEqual({ winner: "X", reason: "forfeit" });
    } finally {
      a.close();
      b.close();
    }
  });
});
