/**
 * The games this server runs, registered on the room API (server/rooms/): the
 * arena (contract section 4) and tic-tac-toe with its matchmaker.
 */
import type { Server } from "socket.io";
import type { Logger } from "pino";
import type { Clock } from "../clock";
import type { RedisClient } from "../redis-clients";
import type { Gateway } from "../realtime/gateway";
import type { RoomBus } from "../rooms/bus";
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
  /** where rooms' shares and ops travel when clustered (default: every node, through the adapter) */
  bus?: RoomBus;
  /** the matchmaking queue lives here when clustered (else in memory) */
  redis?: RedisClient | null;
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
