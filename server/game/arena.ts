/**
 * Pure rules of the arena game: bounds, speed cap, spawn points. No sockets,
 * no timers: time is passed in. The room itself is arena-room.ts.
 */
import { ARENA, MAX_SPEED, type PlayerView } from "../../shared/protocol";

/** A player's position on its own node, and when it last moved (for the speed cap). */
export interface Position {
  x: number;
  y: number;
  /** epoch ms of the last accepted move */
  movedAt: number;
}

export { Budget } from "../rooms/budget";

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

/** What everyone sees of a player: positions rounded to a tenth. */
export function view(who: Omit<PlayerView, "x" | "y">, at: { x: number; y: number }): PlayerView {
  return { playerId: who.playerId, userId: who.userId, username: who.username, x: Math.round(at.x * 10) / 10, y: Math.round(at.y * 10) / 10 };
}
