/**
 * Tic-tac-toe as a room type: two players seated by the matchmaker
 * (matchmaker.ts), possibly on different nodes. The game is room state, changed
 * only by ops (a move, a forfeit) that every node holding the room applies in
 * the same order: only the player whose turn it is can produce one, and that
 * player's node has already applied the previous one, so the copies agree.
 */
import { TicTacToeEvents, TicTacToePlayPayload, type TicTacToePlayer, type TicTacToeState, type TicTacToeYou } from "../../shared/protocol";
import { ErrorCode } from "../../shared/errors";
import { defineRoom } from "../rooms/define";
import { RoomError } from "../rooms/messages";
import { applyOp, markOf, newGame, refusal, turnOf, type Game, type GameOp, type Mark, type Seat } from "./tictactoe";

/** What the matchmaker hands to `seat`: who plays which mark, and when. */
export interface TicTacToeInit {
  seats: Record<Mark, Seat>;
  at: number;
}

interface RoomState {
  game: Game;
  seatedAt: number;
}

/** A seated player whose opponent has not shown up by then (its node died, it disconnected meanwhile) wins nothing: the game is called off. */
export const SEAT_TIMEOUT_MS = 5000;

export const ticTacToeRoom = defineRoom<RoomState, { mark: Mark }, TicTacToePlayer, GameOp>()({
  name: "tictactoe",
  maxPlayers: 2,
  seatedEvent: TicTacToeEvents.MATCHED,
  createState: (_roomId, init) => {
    const { seats, at } = init as TicTacToeInit;
    return { game: newGame(seats), seatedAt: at };
  },
  applyOp: (state, op) => applyOp(state.game, op),
  onJoin: ({ room, who }) => {
    const mark = markOf(room.state.game, who.playerId);
    if (!mark) throw new RoomError(ErrorCode.FORBIDDEN, "You have no seat in this game.");
    return { mark };
  },
  // Leaving, disconnecting or being revoked mid-game is a forfeit (a second forfeit changes nothing).
  onLeave: ({ room, who }) => {
    if (!room.state.game.result) room.apply({ kind: "forfeit", mark: who.mark });
  },
  view: (p) => ({ playerId: p.playerId, userId: p.userId, username: p.username, mark: p.state.mark }),
  onTick: ({ room, now }) => {
    const { game, seatedAt } = room.state;
    if (!game.result && room.views().length < 2 && now - seatedAt > SEAT_TIMEOUT_MS) room.apply({ kind: "abandon" });
  },
  state: {
    event: TicTacToeEvents.STATE,
    push: "change",
    build: (room): TicTacToeState => {
      const { game } = room.state;
      const players = room.views();
      return {
        roomId: room.id,
        board: [...game.board],
        players,
        status: game.result ? "over" : players.length < 2 ? "waiting" : "playing",
        turn: turnOf(game),
        result: game.result,
      };
    },
  },
  playerState: {
    event: TicTacToeEvents.YOU,
    build: (room, player): TicTacToeYou => ({ roomId: room.id, mark: player.state.mark, yourTurn: turnOf(room.state.game) === player.state.mark }),
  },
  messages: {
    [TicTacToeEvents.PLAY]: {
      schema: TicTacToePlayPayload,
      budget: { rate: 5, burst: 10 },
      handle: ({ room, player, data }) => {
        if (room.views().length < 2 && !room.state.game.result) throw new RoomError(ErrorCode.FORBIDDEN, "Your opponent is not here yet.");
        const why = refusal(room.state.game, player.state.mark, data.cell);
        if (why) throw new RoomError(why.startsWith("Invalid") ? ErrorCode.VALIDATION_FAILED : ErrorCode.FORBIDDEN, why);
        room.apply({ kind: "play", mark: player.state.mark, cell: data.cell });
      },
    },
  },
});
