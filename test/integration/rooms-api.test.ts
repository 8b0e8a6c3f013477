/**
 * The room API on its own, as a library user would write a room: a real
 * socket.io server and clients, a small counter room, and the promises the host
 * keeps: bad payloads named, budgets, the player limit, state pushes, leave on
 * disconnect, and a throwing hook that never takes the node down.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Server } from "socket.io";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { systemClock } from "../../server/clock";
import type { Gateway, GameSocket } from "../../server/realtime/gateway";
import { defineRoom } from "../../server/rooms/define";
import { hostRooms } from "../../server/rooms/host";
import { RoomError } from "../../server/rooms/messages";
import { connect, emitAck, nextEvent, type TestSocket } from "../helpers/sockets";
import { waitFor } from "../helpers/wait";

const left: string[] = [];
let tickThrows = false;
let thrownTicks = 0;

const counterRoom = defineRoom<{ total: number }, { clicks: number }, { playerId: string; userId: string; username: string; clicks: number }, { add: number }>()({
  name: "counter",
  maxPlayers: 2,
  joinEvent: "counter:join",
  leaveEvent: "counter:leave",
  createState: () => ({ total: 0 }),
  applyOp: (state, op) => void (state.total += op.add),
  onJoin: () => ({ clicks: 0 }),
  onLeave: ({ who }) => void left.push(who.username),
  view: (p) => ({ playerId: p.playerId, userId: p.userId, username: p.username, clicks: p.state.clicks }),
  tickHz: 50,
  onTick: () => {
    if (!tickThrows) return;
    thrownTicks++;
    throw new Error("tick bug");
  },
  state: { event: "counter:state", push: "change", build: (room) => ({ total: room.state.total, players: room.views() }) },
  playerState: { event: "counter:you", build: (_room, p) => ({ clicks: p.state.clicks }) },
  messages: {
    "counter:click": {
      schema: z.object({ by: z.object({ amount: z.number().int().min(1).max(5) }) }),
      budget: { rate: 1, burst: 3 },
      handle: ({ room, player, data }) => {
        player.state.clicks++;
        room.apply({ add: data.by.amount });
        return { total: room.state.total };
      },
    },
    "counter:boom": {
      schema: z.object({ coded: z.boolean() }),
      handle: ({ data }) => {
        if (data.coded) throw new RoomError("FORBIDDEN", "Not today.");
        throw new Error("a bug in the room");
      },
    },
  },
});

describe("the room API", () => {
  let io: Server;
  let url: string;
  let stop: () => void;
  const open: TestSocket[] = [];
  let n = 0;

  beforeAll(async () => {
    const http = createServer();
    io = new Server(http);
    // Stands in for the gateway's handshake: every socket is an authenticated player.
    io.use((socket, next) => {
      const name = String(socket.handshake.auth.token);
      socket.data = { claims: { sub: `u-${name}` }, username: name, connectedAt: Date.now() };
      next();
    });
    const gateway = { onSocket: (h: (s: GameSocket) => void) => io.on("connection", (s) => h(s as GameSocket)) } as unknown as Gateway;
    stop = hostRooms({ io, gateway, clock: systemClock, log: pino({ level: "silent" }), nodeId: "test", clustered: false }, [counterRoom]).close;
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    open.forEach((s) => s.close());
    stop?.();
    await new Promise((r) => io.close(r));
  });

  async function player() {
    const s = await connect(url, `p${++n}`);
    open.push(s);
    return s.socket;
  }

  it("validates against the room's schema, naming the nested field, before anything else", async () => {
    const a = await player();
    expect(await emitAck(a, "counter:click", { by: { amount: 1 } })).toMatchObject({ ok: false, error: { code: "VALIDATION_FAILED", message: "Not in a counter room." } });
    await emitAck(a, "counter:join", { roomId: "v" });
    const bad = await emitAck(a, "counter:click", { by: { amount: 9 } });
    expect(bad.error.code).toBe("VALIDATION_FAILED");
    expect(bad.error.message).toMatch(/^Invalid by\.amount: /);
    expect((await emitAck(a, "counter:join", { roomId: "has space" })).error.message).toMatch(/^Invalid roomId: /);
  });

  it("applies ops, pushes room and player state, and spends the per-player budget", async () => {
    const [a, b] = [await player(), await player()];
    await emitAck(a, "counter:join", { roomId: "c" });
    await emitAck(b, "counter:join", { roomId: "c" });
    const bSees = nextEvent<{ total: number; players: { clicks: number }[] }>(b, "counter:state", 2000, (st) => st.total === 3);
    const aYou = nextEvent(a, "counter:you", 2000, (y: { clicks: number }) => y.clicks === 1);
    expect(await emitAck(a, "counter:click", { by: { amount: 3 } })).toEqual({ ok: true, total: 3 });
    expect((await bSees).players.map((p) => p.clicks).sort()).toEqual([0, 1]);
    await aYou;
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await emitAck(a, "counter:click", { by: { amount: 1 } }));
    expect(replies.map((r) => r.ok)).toEqual([true, true, false, false]);
    expect(replies[3].error.code).toBe("RATE_LIMITED");
  });

  it("refuses a third player, and a disconnect is a leave", async () => {
    const [a, b, c] = [await player(), await player(), await player()];
    await emitAck(a, "counter:join", { roomId: "full" });
    await emitAck(b, "counter:join", { roomId: "full" });
    expect(await emitAck(c, "counter:join", { roomId: "full" })).toMatchObject({ ok: false, error: { code: "FORBIDDEN", message: "The room is full (at most 2 players)." } });
    const aSeesLeave = nextEvent<{ players: unknown[] }>(a, "counter:state", 2000, (st) => st.players.length === 1);
    const bName = `p${n - 1}`;
    b.disconnect();
    await aSeesLeave;
    expect(left).toContain(bName);
    expect((await emitAck(c, "counter:join", { roomId: "full" })).ok).toBe(true);
  });

  it("a throwing handler is acked INTERNAL (or its own code); a throwing tick is logged; the node plays on", async () => {
    const a = await player();
    await emitAck(a, "counter:join", { roomId: "boom" });
    expect(await emitAck(a, "counter:boom", { coded: true })).toEqual({ ok: false, error: { code: "FORBIDDEN", message: "Not today." } });
    expect((await emitAck(a, "counter:boom", { coded: false })).error.code).toBe("INTERNAL");
    tickThrows = true;
    try {
      await waitFor(() => thrownTicks >= 3, { message: "three ticks threw" });
    } finally {
      tickThrows = false;
    }
    expect(a.connected).toBe(true);
    expect((await emitAck(a, "counter:click", { by: { amount: 1 } })).ok).toBe(true);
  });
});

