/**
 * The games this server runs, registered on the room API (server/rooms/): the
 * arena (contract section 4) and tic-tac-toe with its matchmaker.
 */
import type { Redis } from "ioredis";
import type { Server } from "socket.io";
import type { Logger } from "pino";
import type { Clock } from "../clock";
import type { Gateway } from "../realtime/gateway";
import { hostRooms } from "../rooms/host";
import { arenaRoom } from "./arena-room";
import { MemoryMatchQueue, RedisMatchQueue, registerMatchmaker } from "./matchmaker";
import { ticTacToeRoom } from "./tictactoe-room";

export interface GameHandle {
  close(): void;
}

export interface GameDeps {
  io: Server;
  gateway: Gateway;
  clock: Clock;
  log: Logger;
  nodeId: string;
  /** true with the Redis adapter: rooms span nodes */
  clustered: boolean;
  /** the matchmaking queue lives here when clustered (else in memory) */
  redis?: Redis | null;
}

export function registerGame(deps: GameDeps): GameHandle {
  const rooms = hostRooms(deps, [arenaRoom, ticTacToeRoom]);
  registerMatchmaker({
    ...deps,
    host: rooms.hosts.get(ticTacToeRoom.name)!,
    queue: deps.clustered && deps.redis ? new RedisMatchQueue(deps.redis) : new MemoryMatchQueue(),
  });
  return rooms;
}
