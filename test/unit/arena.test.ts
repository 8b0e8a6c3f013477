import { describe, expect, it } from "vitest";
import { Budget, applyMove, spawnPoint, view } from "../../server/game/arena";
import { ARENA, MAX_SPEED } from "../../shared/protocol";

describe("arena rules", () => {
  it("clamps targets to the arena", () => {
    const from = { x: ARENA.width - 1, y: 1, movedAt: 0 };
    const at = applyMove(from, { x: ARENA.width + 50, y: -50 }, 1000);
    expect(at).toEqual({ x: ARENA.width, y: 0 });
  });

  it("caps speed by elapsed time", () => {
    const from = { x: 100, y: 100, movedAt: 1000 };
    const at = applyMove(from, { x: 700, y: 100 }, 1100); // 100 ms -> at most 40 units
    expect(at.x).toBeCloseTo(100 + MAX_SPEED * 0.1);
    expect(at.y).toBe(100);
  });

  it("does not let an idle player bank a teleport", () => {
    const at = applyMove({ x: 0, y: 0, movedAt: 0 }, { x: 800, y: 0 }, 60_000);
    expect(at.x).toBeCloseTo(MAX_SPEED * 0.25);
  });

  it("rejects nothing within the cap and moves diagonally at the capped speed", () => {
    const at = applyMove({ x: 100, y: 100, movedAt: 0 }, { x: 400, y: 400 }, 100);
    expect(Math.hypot(at.x - 100, at.y - 100)).toBeCloseTo(MAX_SPEED * 0.1);
    expect(applyMove({ x: 100, y: 100, movedAt: 0 }, { x: 110, y: 110 }, 100)).toEqual({ x: 110, y: 110 });
  });

  it("spawns inside the arena, deterministically", () => {
    for (const id of ["a", "socket-123", "zzzzzzzzzzzz"]) {
      const p = spawnPoint(id);
      expect(p.x).toBeGreaterThanOrEqual(0);
      expect(p.x).toBeLessThanOrEqual(ARENA.width);
      expect(p.y).toBeGreaterThanOrEqual(0);
      expect(p.y).toBeLessThanOrEqual(ARENA.height);
      expect(spawnPoint(id)).toEqual(p);
    }
  });

  it("a budget allows bursts, then the rate", () => {
    const b = new Budget(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true);
  });

  it("shows positions rounded to a tenth, with who the player is", () => {
    expect(view({ playerId: "p1", userId: "u1", username: "one" }, { x: 10.04, y: 599.96 })).toEqual({ playerId: "p1", userId: "u1", username: "one", x: 10, y: 600 });
  });
});
