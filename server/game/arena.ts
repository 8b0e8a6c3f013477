/**
 * Pure game rules for one node's share of the arenas: bounds, speed cap,
 * per-socket event budgets. No sockets, no timers: time is passed in.
 */
import { ARENA, MAX_SPEED, type PlayerView } from "../../shared/protocol";

export interface Player extends PlayerView {
  /** the socket that owns this player (one player per socket) */
  playerId: string;
  roomId: string;
  /** epoch ms of the last accepted move */
  movedAt: number;
}

/** A leaky-bucket budget: `rate` events per second with bursts up to `burst`. */
export class Budget {
  private tokens: number;
  private at: number;
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }
  /** true if the event fits the budget (and spends it) */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Where a move request actually lands: inside the arena, no faster than MAX_SPEED since the last move. */
export function applyMove(from: { x: number; y: number; movedAt: number }, to: { x: number; y: number }, now: number): { x: number; y: number } {
  const tx = clamp(to.x, 0, ARENA.width);
  const ty = clamp(to.y, 0, ARENA.height);
  // Cap elapsed time so an idle player cannot bank a teleport.
  const dt = clamp((now - from.movedAt) / 1000, 0, 0.25);
  const maxDist = MAX_SPEED * dt;
  const dx = tx - from.x;
  const dy = ty - from.y;
  const dist = Math.hypot(dx, dy);
  if (dist <= maxDist || dist === 0) return { x: tx, y: ty };
  const k = maxDist / dist;
  return { x: from.x + dx * k, y: from.y + dy * k };
}

/** A spawn point spread around the arena, deterministic per player id. */
export function spawnPoint(playerId: string): { x: number; y: number } {
  let h = 0;
  for (let i = 0; i < playerId.length; i++) h = (h * 31 + playerId.charCodeAt(i)) >>> 0;
  return { x: 50 + (h % (ARENA.width - 100)), y: 50 + ((h >>> 10) % (ARENA.height - 100)) };
}

/** The players this node owns, grouped by room. */
export class Arena {
  private readonly players = new Map<string, Player>();
  private readonly rooms = new Map<string, Set<string>>();

  join(playerId: string, who: { userId: string; username: string }, roomId: string, now: number): Player {
    this.leave(playerId);
    const p: Player = { playerId, roomId, userId: who.userId, username: who.username, ...spawnPoint(playerId), movedAt: now };
    this.players.set(playerId, p);
    let room = this.rooms.get(roomId);
    if (!room) this.rooms.set(roomId, (room = new Set()));
    room.add(playerId);
    return p;
  }

  /** Returns the player that left, if it was in a room. */
  leave(playerId: string): Player | undefined {
    const p = this.players.get(playerId);
    if (!p) return undefined;
    this.players.delete(playerId);
    const room = this.rooms.get(p.roomId);
    room?.delete(playerId);
    if (room && room.size === 0) this.rooms.delete(p.roomId);
    return p;
  }

  get(playerId: string): Player | undefined {
    return this.players.get(playerId);
  }

  move(playerId: string, to: { x: number; y: number }, now: number): Player | undefined {
    const p = this.players.get(playerId);
    if (!p) return undefined;
    const at = applyMove(p, to, now);
    p.x = at.x;
    p.y = at.y;
    p.movedAt = now;
    return p;
  }

  /** Rooms with at least one local player (only those get ticks). */
  activeRooms(): string[] {
    return [...this.rooms.keys()];
  }

  playersIn(roomId: string): Player[] {
    return [...(this.rooms.get(roomId) ?? [])].map((id) => this.players.get(id)!);
  }
}

export function view(p: Player): PlayerView {
  return { playerId: p.playerId, userId: p.userId, username: p.username, x: Math.round(p.x * 10) / 10, y: Math.round(p.y * 10) / 10 };
}
