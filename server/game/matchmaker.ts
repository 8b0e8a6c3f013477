/**
 * Pairs tic-tac-toe players across the cluster: one queue (a Redis list, or in
 * memory on a single node); whoever finds someone of another user waiting
 * seats both (RoomHost.seat reaches the node holding the other socket).
 */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { EmptyPayload, TicTacToeEvents } from "../../shared/protocol";
import type { Clock } from "../clock";
import type { RedisClient } from "../redis-clients";
import type { Gateway, GameSocket } from "../realtime/gateway";
import type { RoomHost } from "../rooms/host";
import { messageListener } from "../rooms/messages";
import type { Seat } from "./tictactoe";
import type { TicTacToeInit } from "./tictactoe-room";

/** A waiting player, as stored in the queue (serialized once: Redis removes it by exact value). */
export interface QueueEntry extends Seat {
  nodeId: string;
}

export interface MatchQueue {
  /** Takes the first waiting player of another user out of the queue, or queues `entry` (once) and returns null. */
  pair(entry: string, userId: string): Promise<string | null>;
  remove(entry: string): Promise<void>;
}

export class MemoryMatchQueue implements MatchQueue {
  private readonly waiting: string[] = [];
  async pair(entry: string, userId: string): Promise<string | null> {
    const i = this.waiting.findIndex((e) => (JSON.parse(e) as QueueEntry).userId !== userId);
    if (i >= 0) return this.waiting.splice(i, 1)[0]!;
    if (!this.waiting.includes(entry)) this.waiting.push(entry);
    return null;
  }
  async remove(entry: string): Promise<void> {
    const i = this.waiting.indexOf(entry);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}

/**
 * The same, atomic in one script: two nodes never take the same waiting player. Its one key is
 * passed in KEYS, so it runs as is on a Redis Cluster (one slot).
 *
 * Redis keys:
 *   gh:ttt:queue   list   QueueEntry JSON of each waiting player, oldest first
 */
const PAIR_SCRIPT = `
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for _, e in ipairs(items) do
  local ok, d = pcall(cjson.decode, e)
  if ok and type(d) == 'table' and d.userId ~= ARGV[2] then
    redis.call('LREM', KEYS[1], 1, e)
    return e
  end
end
for _, e in ipairs(items) do
  if e == ARGV[1] then return false end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return false`;

export class RedisMatchQueue implements MatchQueue {
  constructor(
    private readonly redis: RedisClient,
    private readonly key = "gh:ttt:queue",
  ) {}
  async pair(entry: string, userId: string): Promise<string | null> {
    return (await this.redis.eval(PAIR_SCRIPT, 1, this.key, entry, userId)) as string | null;
  }
  async remove(entry: string): Promise<void> {
    await this.redis.lrem(this.key, 0, entry);
  }
}

export interface MatchmakerDeps {
  gateway: Gateway;
  host: RoomHost;
  queue: MatchQueue;
  clock: Clock;
  log: Logger;
  nodeId: string;
}

/** `ttt:queue` and `ttt:leave` on every socket (listeners made once, shared by every socket). */
export function registerMatchmaker(deps: MatchmakerDeps): void {
  const { host, queue, clock, log } = deps;
  const base = { now: () => clock.now(), log, schema: EmptyPayload };
  /** socket id -> its queue entry while it waits */
  const waiting = new Map<string, string>();
  const unqueue = async (socket: GameSocket) => {
    const entry = waiting.get(socket.id);
    if (!entry) return;
    waiting.delete(socket.id);
    await queue.remove(entry);
  };

  // Each call may reach Redis: a small budget.
  const onQueue = messageListener(TicTacToeEvents.QUEUE, { ...base, budget: { rate: 1, burst: 3 } }, async (socket) => {
    host.leave(socket); // a new game forfeits the current one
    const me: QueueEntry = { playerId: socket.id, userId: socket.data.claims.sub, username: socket.data.username, nodeId: deps.nodeId };
    const entry = JSON.stringify(me);
    const found = await queue.pair(entry, me.userId);
    if (!found) {
      waiting.set(socket.id, entry);
      // Gone while the queue answered: take the entry back out.
      if (!socket.connected) await unqueue(socket);
      return { status: "waiting" };
    }
    const opponent = JSON.parse(found) as QueueEntry;
    // Whoever waited longer plays X (moves first). A seat whose socket is gone by now is
    // never taken: the other player's game is called off after SEAT_TIMEOUT_MS.
    const init: TicTacToeInit = { seats: { X: seatOf(opponent), O: seatOf(me) }, at: clock.now() };
    const roomId = `ttt-${randomBytes(9).toString("base64url")}`;
    host.seat(me.playerId, roomId, init);
    host.seat(opponent.playerId, roomId, init);
    return { status: "matched", roomId };
  });

  const onLeave = messageListener(TicTacToeEvents.LEAVE, { ...base, budget: { rate: 2, burst: 6 } }, async (socket) => {
    await unqueue(socket);
    host.leave(socket);
  });

  const onDisconnect = function (this: GameSocket): void {
    unqueue(this).catch((err: unknown) => log.warn({ err: (err as Error).message }, "could not take a player out of the queue"));
  };

  deps.gateway.onSocket((socket: GameSocket) => {
    socket.on(TicTacToeEvents.QUEUE, onQueue);
    socket.on(TicTacToeEvents.LEAVE, onLeave);
    socket.on("disconnect", onDisconnect);
  });
}

const seatOf = (e: QueueEntry): Seat => ({ playerId: e.playerId, userId: e.userId, username: e.username });
