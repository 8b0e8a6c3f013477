/**
 * Socket glue for the arena game. Each node owns its own players' positions;
 * rooms span nodes through the socket.io adapter (joins, leaves, chat) and a
 * per-tick server-side exchange of each node's share of a room, so every client
 * receives the whole room in one `state` from its own node.
 */
import type { Server } from "socket.io";
import type { Logger } from "pino";
import { ErrorCode, errorMessage } from "../../shared/errors";
import {
  ChatSendPayload,
  Events,
  MovePayload,
  RoomJoinPayload,
  TICK_HZ,
  type ChatMessage,
  type PlayerView,
  type StatePayload,
} from "../../shared/protocol";
import type { Clock } from "../clock";
import type { Gateway, GameSocket } from "../realtime/gateway";
import { Arena, Budget, view } from "./arena";

export interface GameHandle {
  close(): void;
}

export interface GameDeps {
  io: Server;
  gateway: Gateway;
  clock: Clock;
  log: Logger;
  nodeId: string;
  /** true with the Redis adapter: exchange room shares with the other nodes */
  clustered: boolean;
}

const ROOM_STATE_EVENT = "gh:room-state";
/** A remote node's share of a room is dropped if not refreshed for this long (node died). */
const REMOTE_STALE_MS = 1000;
const MOVE_RATE = 30; // per second
const MOVE_BURST = 45;
const CHAT_RATE = 0.5; // per second
const CHAT_BURST = 5;
// Joins and leaves are broadcast to the room (and across nodes): a budget, like moves and chat.
const MEMBERSHIP_RATE = 2; // per second
const MEMBERSHIP_BURST = 6;

type AckFn = (reply: unknown) => void;
const ackOf = (ack: unknown): AckFn => (typeof ack === "function" ? (ack as AckFn) : () => undefined);
const fail = (code: ErrorCode) => ({ ok: false, error: { code, message: errorMessage[code] } });
const roomKey = (roomId: string) => `room:${roomId}`;

interface RoomShare {
  roomId: string;
  nodeId: string;
  players: PlayerView[];
}

export function registerGame(deps: GameDeps): GameHandle {
  const { io, gateway, clock } = deps;
  const arena = new Arena();
  /** roomId -> nodeId -> that node's players and when we heard */
  const remote = new Map<string, Map<string, { players: PlayerView[]; at: number }>>();

  const remotePlayers = (roomId: string, now: number): PlayerView[] => {
    const out: PlayerView[] = [];
    for (const share of remote.get(roomId)?.values() ?? []) if (now - share.at <= REMOTE_STALE_MS) out.push(...share.players);
    return out;
  };

  /**
   * Drops the shares no node refreshed for REMOTE_STALE_MS, in every room (we hear about rooms
   * we have no player in too: without this they would pile up). A node that died sent no
   * player:left for its players, so our players in that room hear it from us.
   */
  const purgeStaleShares = (now: number) => {
    for (const [roomId, shares] of remote) {
      for (const [nodeId, share] of shares) {
        if (now - share.at <= REMOTE_STALE_MS) continue;
        shares.delete(nodeId);
        for (const p of share.players) io.local.to(roomKey(roomId)).emit(Events.PLAYER_LEFT, { playerId: p.playerId, userId: p.userId, username: p.username });
      }
      if (shares.size === 0) remote.delete(roomId);
    }
  };

  const roomPlayers = (roomId: string, now: number): PlayerView[] => [...arena.playersIn(roomId).map(view), ...remotePlayers(roomId, now)];

  if (deps.clustered) {
    io.on(ROOM_STATE_EVENT, (share: RoomShare) => {
      if (!share || typeof share.roomId !== "string" || share.nodeId === deps.nodeId || !Array.isArray(share.players)) return;
      let shares = remote.get(share.roomId);
      if (!shares) remote.set(share.roomId, (shares = new Map()));
      shares.set(share.nodeId, { players: share.players, at: clock.now() });
    });
  }

  /**
   * Our share of a room, to the other nodes at once on a join or leave (the tick
   * repeats it): without it a node answered a join with a room missing whoever
   * joined elsewhere in the last tick (and they never got a player:joined for
   * them), and kept showing a player who left in `state` for REMOTE_STALE_MS.
   * Sent before the player:joined / player:left broadcast, on the same Redis
   * connection, so the other nodes have it by the time their clients hear it.
   */
  const publishShare = (roomId: string) => {
    if (!deps.clustered) return;
    io.serverSideEmit(ROOM_STATE_EVENT, { roomId, nodeId: deps.nodeId, players: arena.playersIn(roomId).map(view) } satisfies RoomShare);
  };

  const leave = (socket: GameSocket) => {
    const p = arena.leave(socket.id);
    if (!p) return;
    void socket.leave(roomKey(p.roomId));
    publishShare(p.roomId);
    io.to(roomKey(p.roomId)).emit(Events.PLAYER_LEFT, { playerId: p.playerId, userId: p.userId, username: p.username });
  };

  gateway.onSocket((socket) => {
    const now = clock.now();
    const moves = new Budget(MOVE_RATE, MOVE_BURST, now);
    const chats = new Budget(CHAT_RATE, CHAT_BURST, now);
    const memberships = new Budget(MEMBERSHIP_RATE, MEMBERSHIP_BURST, now);
    const who = () => ({ userId: socket.data.claims.sub, username: socket.data.username });

    socket.on(Events.ROOM_JOIN, (payload: unknown, ack: unknown) => {
      const reply = ackOf(ack);
      const parsed = RoomJoinPayload.safeParse(payload);
      if (!parsed.success) return reply(fail(ErrorCode.VALIDATION_FAILED));
      if (!memberships.take(clock.now())) return reply(fail(ErrorCode.RATE_LIMITED));
      leave(socket);
      const { roomId } = parsed.data;
      const p = arena.join(socket.id, who(), roomId, clock.now());
      void socket.join(roomKey(roomId));
      publishShare(roomId);
      socket.to(roomKey(roomId)).emit(Events.PLAYER_JOINED, view(p));
      reply({ ok: true, room: { id: roomId, players: roomPlayers(roomId, clock.now()) }, you: view(p) });
    });

    socket.on(Events.ROOM_LEAVE, (_payload: unknown, ack: unknown) => {
      if (!memberships.take(clock.now())) return ackOf(ack)(fail(ErrorCode.RATE_LIMITED));
      leave(socket);
      ackOf(ack)({ ok: true });
    });

    socket.on(Events.MOVE, (payload: unknown, ack: unknown) => {
      // Over budget: dropped silently, as a flood should be.
      if (!moves.take(clock.now())) return;
      const parsed = MovePayload.safeParse(payload);
      if (!parsed.success) return ackOf(ack)(fail(ErrorCode.VALIDATION_FAILED));
      const p = arena.move(socket.id, parsed.data, clock.now());
      ackOf(ack)(p ? { ok: true, x: p.x, y: p.y } : fail(ErrorCode.VALIDATION_FAILED));
    });

    socket.on(Events.CHAT_SEND, (payload: unknown, ack: unknown) => {
      const reply = ackOf(ack);
      const parsed = ChatSendPayload.safeParse(payload);
      if (!parsed.success) return reply(fail(ErrorCode.VALIDATION_FAILED));
      const p = arena.get(socket.id);
      if (!p) return reply(fail(ErrorCode.VALIDATION_FAILED));
      if (!chats.take(clock.now())) return reply(fail(ErrorCode.RATE_LIMITED));
      const msg: ChatMessage = { userId: p.userId, username: p.username, text: parsed.data.text, at: clock.now() };
      io.to(roomKey(p.roomId)).emit(Events.CHAT_MESSAGE, msg);
      reply({ ok: true });
    });

    socket.on("disconnect", () => leave(socket));
  });

  const tick = setInterval(() => {
    const now = clock.now();
    for (const roomId of arena.activeRooms()) {
      const local = arena.playersIn(roomId).map(view);
      if (deps.clustered) io.serverSideEmit(ROOM_STATE_EVENT, { roomId, nodeId: deps.nodeId, players: local } satisfies RoomShare);
      const state: StatePayload = { roomId, at: now, players: [...local, ...remotePlayers(roomId, now)] };
      io.local.to(roomKey(roomId)).emit(Events.STATE, state);
    }
  }, 1000 / TICK_HZ);
  tick.unref();
  const purge = setInterval(() => purgeStaleShares(clock.now()), REMOTE_STALE_MS);
  purge.unref();

  return {
    close: () => {
      clearInterval(tick);
      clearInterval(purge);
    },
  };
}
