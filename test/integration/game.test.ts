/** The arena game over real sockets on one node: rooms, authoritative moves, chat, leaving. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatePayload } from "../../shared/protocol";
import { call, register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { connect, emitAck, nextEvent, type TestSocket } from "../helpers/sockets";
import { waitFor } from "../helpers/wait";

describe("the arena game on one node", () => {
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
    return { pair, s };
  }

  it("two players in a room see each other join, move and chat", async () => {
    const a = await player();
    const b = await player();
    const joinA = await emitAck(a.s.socket, "room:join", { roomId: "g1" });
    expect(joinA).toMatchObject({ ok: true, room: { id: "g1" } });
    expect(joinA.room.players.map((p: any) => p.userId)).toEqual([a.pair.user.id]);

    const seenJoin = nextEvent(a.s.socket, "player:joined");
    const joinB = await emitAck(b.s.socket, "room:join", { roomId: "g1" });
    expect(joinB.room.players.map((p: any) => p.userId).sort()).toEqual([a.pair.user.id, b.pair.user.id].sort());
    expect(await seenJoin).toMatchObject({ userId: b.pair.user.id, username: b.pair.user.username });

    // B moves far away: the server caps the step; A sees B's authoritative position in a state tick.
    const start = joinB.you as { x: number; y: number };
    const moved = await emitAck(b.s.socket, "move", { x: start.x > 400 ? 0 : 800, y: start.y });
    expect(moved.ok).toBe(true);
    expect(Math.abs(moved.x - start.x)).toBeLessThanOrEqual(100 + 1e-6); // at most 400 u/s x 0.25 s
    const state = await nextEvent<StatePayload>(a.s.socket, "state", 2000, (st) =>
      st.players.some((p) => p.userId === b.pair.user.id && p.x !== start.x),
    );
    expect(state.roomId).toBe("g1");
    expect(state.players).toHaveLength(2);

    const chat = nextEvent(a.s.socket, "chat:message");
    // Invisible and direction-override characters are stripped: others read what was typed.
    expect(await emitAck(b.s.socket, "chat:send", { text: "  hello\u202E arena\u200B  " })).toEqual({ ok: true });
    expect(await chat).toMatchObject({ userId: b.pair.user.id, text: "hello arena" });
  });

  it("validates payloads and rate-limits chat without breaking the socket", async () => {
    const a = await player();
    expect((await emitAck(a.s.socket, "chat:send", { text: "not in a room" })).ok).toBe(false);
    await emitAck(a.s.socket, "room:join", { roomId: "g2" });
    for (const bad of [null, {}, { roomId: "" }, { roomId: "x".repeat(40) }, { roomId: "a b" }, { roomId: 7 }]) {
      expect((await emitAck(a.s.socket, "room:join", bad)).error.code).toBe("VALIDATION_FAILED");
    }
    for (const bad of [{ x: "1", y: 2 }, { x: Infinity, y: 0 }, null]) {
      expect((await emitAck(a.s.socket, "move", bad)).error.code).toBe("VALIDATION_FAILED");
    }
    for (const bad of [{ text: "" }, { text: "   " }, { text: "\u202E\u200B" }, { text: "x".repeat(201) }, { text: 5 }]) {
      expect((await emitAck(a.s.socket, "chat:send", bad)).error.code).toBe("VALIDATION_FAILED");
    }
    // Like HTTP's 400s, a refusal names the field (issue 11 part 6).
    expect((await emitAck(a.s.socket, "room:join", { roomId: "a b" })).error.message).toMatch(/^Invalid roomId: /);
    expect((await emitAck(a.s.socket, "move", { x: 1, y: "2" })).error.message).toMatch(/^Invalid y: /);
    expect((await emitAck(a.s.socket, "chat:send", { text: 5 })).error.message).toMatch(/^Invalid text: /);
    expect((await emitAck(a.s.socket, "chat:send", null)).error.message).toMatch(/^Invalid payload: /);
    const replies = [];
    for (let i = 0; i < 8; i++) replies.push(await emitAck(a.s.socket, "chat:send", { text: `msg ${i}` }));
    expect(replies.filter((r) => r.ok)).toHaveLength(5);
    expect(replies.filter((r) => !r.ok).every((r) => r.error.code === "RATE_LIMITED")).toBe(true);
    // Still a healthy player in a room.
    const st = await nextEvent<StatePayload>(a.s.socket, "state");
    expect(st.roomId).toBe("g2");
  });

  it("a join/leave flood is limited: the room hears a bounded number of comings and goings", async () => {
    const [a, b] = [await player(), await player()];
    await emitAck(b.s.socket, "room:join", { roomId: "churn" });
    const heard: string[] = [];
    b.s.socket.on("player:joined", () => heard.push("joined"));
    b.s.socket.on("player:left", () => heard.push("left"));
    const acks = [];
    for (let i = 0; i < 30; i++) acks.push(await emitAck(a.s.socket, i % 2 ? "room:leave" : "room:join", i % 2 ? {} : { roomId: "churn" }));
    const refused = acks.filter((r) => !r.ok);
    expect(refused.length).toBeGreaterThanOrEqual(20); // a burst of 6, then about 2 per second
    expect(refused.every((r) => r.error.code === "RATE_LIMITED")).toBe(true);
    // What the accepted ones, and only those, announce to the other player.
    let inRoom = false;
    let expected = 0;
    acks.forEach((r, i) => {
      if (!r.ok) return;
      if (i % 2 === 0) {
        expected += inRoom ? 2 : 1; // a join first leaves the current room
        inRoom = true;
      } else if (inRoom) {
        expected += 1;
        inRoom = false;
      }
    });
    await waitFor(() => heard.length === expected, { message: "b heard every accepted join and leave" });
    expect(expected).toBeLessThanOrEqual(10);
  });

  it("a move flood is dropped, not obeyed: no speed gained", async () => {
    const a = await player();
    const t0 = Date.now();
    const join = await emitAck(a.s.socket, "room:join", { roomId: "g3" });
    const start = join.you as { x: number; y: number };
    const target = { x: start.x > 400 ? 0 : 800, y: start.y > 300 ? 0 : 600 };
    for (let i = 0; i < 500; i++) a.s.socket.emit("move", target);
    const st = await nextEvent<StatePayload>(a.s.socket, "state", 2000, (s) => s.roomId === "g3");
    const me = st.players.find((p) => p.userId === a.pair.user.id)!;
    const elapsedSec = (Date.now() - t0) / 1000;
    // Whatever got through, the player covered no more than MAX_SPEED allows in the time that passed.
    expect(Math.hypot(me.x - start.x, me.y - start.y)).toBeLessThanOrEqual(400 * elapsedSec + 1);
    expect(a.s.socket.connected).toBe(true);
  });

  it("a revoked player leaves the room and the others get player:left", async () => {
    const a = await player();
    const b = await player();
    await emitAck(a.s.socket, "room:join", { roomId: "g4" });
    await emitAck(b.s.socket, "room:join", { roomId: "g4" });
    const left = nextEvent(a.s.socket, "player:left");
    await call(node.url, "POST", "/auth/logout", { token: b.pair.accessToken });
    expect((await b.s.revoked).reason).toBe("logout");
    expect(await left).toMatchObject({ userId: b.pair.user.id });
    const st = await nextEvent<StatePayload>(a.s.socket, "state");
    expect(st.players.map((p) => p.userId)).toEqual([a.pair.user.id]);
  });

  it("ticks stop when a room empties", async () => {
    const a = await player();
    await emitAck(a.s.socket, "room:join", { roomId: "g5" });
    await nextEvent(a.s.socket, "state");
    await emitAck(a.s.socket, "room:leave", {});
    await expect(nextEvent(a.s.socket, "state", 300)).rejects.toThrow(/timed out/);
  });
});
