import { describe, expect, it } from "vitest";
import { z } from "zod";
import { applyOp, judge, newGame, refusal, turnOf, type Game } from "../../server/game/tictactoe";
import { MemoryMatchQueue } from "../../server/game/matchmaker";
import { validationFailure } from "../../server/rooms/messages";

const seat = (n: string) => ({ playerId: `s${n}`, userId: `u${n}`, username: `user${n}` });
const game = (): Game => newGame({ X: seat("1"), O: seat("2") });

describe("tic-tac-toe rules", () => {
  it("X moves first, then turns alternate", () => {
    const g = game();
    expect(turnOf(g)).toBe("X");
    expect(refusal(g, "O", 0)).toBe("It is not your turn.");
    applyOp(g, { kind: "play", mark: "X", cell: 4 });
    expect(turnOf(g)).toBe("O");
    expect(refusal(g, "O", 4)).toBe("Invalid cell: already taken");
  });

  it("a line of three wins and ends the game", () => {
    const g = game();
    for (const [mark, cell] of [["X", 0], ["O", 3], ["X", 1], ["O", 4], ["X", 2]] as const) applyOp(g, { kind: "play", mark, cell });
    expect(g.result).toEqual({ winner: "X", reason: "line", line: [0, 1, 2] });
    expect(turnOf(g)).toBeNull();
    expect(refusal(g, "O", 5)).toBe("The game is over.");
  });

  it("a full board without a line is a draw", () => {
    expect(judge(["X", "O", "X", "X", "O", "O", "O", "X", "X"])).toEqual({ winner: null, reason: "draw" });
    expect(judge(["X", "O", "", "", "", "", "", "", ""])).toBeNull();
  });

  it("a forfeit gives the other player the game; ops after the end change nothing", () => {
    const g = game();
    applyOp(g, { kind: "forfeit", mark: "O" });
    applyOp(g, { kind: "forfeit", mark: "X" }); // the same leave seen by a second node
    applyOp(g, { kind: "play", mark: "X", cell: 0 });
    expect(g.result).toEqual({ winner: "X", reason: "forfeit" });
    expect(g.board.every((c) => c === "")).toBe(true);
  });

  it("an op that does not fit (out of turn, taken cell) is ignored, so every copy stays equal", () => {
    const g = game();
    applyOp(g, { kind: "play", mark: "O", cell: 0 });
    applyOp(g, { kind: "play", mark: "X", cell: 0 });
    applyOp(g, { kind: "play", mark: "O", cell: 0 });
    expect(g.board.filter((c) => c !== "")).toEqual(["X"]);
  });
});

describe("the in-memory match queue", () => {
  it("pairs two users, never a user with itself, and queues an entry once", async () => {
    const q = new MemoryMatchQueue();
    const a1 = JSON.stringify({ ...seat("a1"), userId: "ua" });
    const a2 = JSON.stringify({ ...seat("a2"), userId: "ua" });
    expect(await q.pair(a1, "ua")).toBeNull();
    expect(await q.pair(a1, "ua")).toBeNull();
    expect(await q.pair(a2, "ua")).toBeNull(); // a second tab of the same user waits too
    const b = JSON.stringify(seat("b"));
    expect(await q.pair(b, "ub")).toBe(a1);
    await q.remove(a2);
    expect(await q.pair(b, "ub")).toBeNull();
  });
});

describe("socket validation errors", () => {
  it("name the field, like HTTP's", () => {
    const schema = z.object({ cell: z.number().int().max(8) });
    const bad = schema.safeParse({ cell: 9 });
    expect(bad.success).toBe(false);
    const reply = validationFailure(bad.error!);
    expect(reply.error.code).toBe("VALIDATION_FAILED");
    expect(reply.error.message).toMatch(/^Invalid cell: /);
    expect(validationFailure(schema.safeParse(null).error!).error.message).toMatch(/^Invalid payload: /);
  });
});
