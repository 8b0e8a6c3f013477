/**
 * Pure rules of tic-tac-toe: a 3x3 board (cells 0-8, row by row), X moves
 * first, a line of three wins, a full board is a draw, a player who leaves
 * forfeits. No sockets, no clock: the room is tictactoe-room.ts.
 */
export type Mark = "X" | "O";
export type Cell = Mark | "";

export interface Seat {
  playerId: string;
  userId: string;
  username: string;
}

export type Result = { winner: Mark; reason: "line"; line: number[] } | { winner: null; reason: "draw" } | { winner: Mark | null; reason: "forfeit" };

export interface Game {
  board: Cell[];
  seats: Record<Mark, Seat>;
  result: Result | null;
}

/** Every state change, applied in the same order on every node holding the game. */
export type GameOp = { kind: "play"; mark: Mark; cell: number } | { kind: "forfeit"; mark: Mark } | { kind: "abandon" };

export const LINES: readonly number[][] = [
  [0, 1, 2],
  [3, 4, 5],
  [6, 7, 8],
  [0, 3, 6],
  [1, 4, 7],
  [2, 5, 8],
  [0, 4, 8],
  [2, 4, 6],
];

export function newGame(seats: Record<Mark, Seat>): Game {
  return { board: Array<Cell>(9).fill(""), seats, result: null };
}

export const other = (m: Mark): Mark => (m === "X" ? "O" : "X");

/** Whose turn it is, or null once the game is over. */
export function turnOf(g: Game): Mark | null {
  if (g.result) return null;
  const xs = g.board.filter((c) => c === "X").length;
  const os = g.board.filter((c) => c === "O").length;
  return xs === os ? "X" : "O";
}

/** Why `mark` may not play `cell` now, or null if it may. */
export function refusal(g: Game, mark: Mark, cell: number): string | null {
  if (g.result) return "The game is over.";
  if (turnOf(g) !== mark) return "It is not your turn.";
  if (!Number.isInteger(cell) || cell < 0 || cell > 8) return "Invalid cell: must be 0-8";
  if (g.board[cell] !== "") return "Invalid cell: already taken";
  return null;
}

/** The finished result of a board, if any. */
export function judge(board: readonly Cell[]): Result | null {
  for (const line of LINES) {
    const [a, b, c] = line as [number, number, number];
    const m = board[a];
    if (m && m === board[b] && m === board[c]) return { winner: m, reason: "line", line: [...line] };
  }
  return board.every((c) => c !== "") ? { winner: null, reason: "draw" } : null;
}

/** Applies an op in place; ops that no longer fit (a second forfeit, a late move) change nothing. */
export function applyOp(g: Game, op: GameOp): void {
  if (g.result) return;
  switch (op.kind) {
    case "play":
      if (refusal(g, op.mark, op.cell)) return;
      g.board[op.cell] = op.mark;
      g.result = judge(g.board);
      return;
    case "forfeit":
      g.result = { winner: other(op.mark), reason: "forfeit" };
      return;
    case "abandon":
      g.result = { winner: null, reason: "forfeit" };
      return;
  }
}

/** The seat of a player, by socket id. */
export function markOf(g: Game, playerId: string): Mark | null {
  return g.seats.X.playerId === playerId ? "X" : g.seats.O.playerId === playerId ? "O" : null;
}
