/** The socket.io side: typed events (contract section 4), opening a socket, acks, connect waiters. */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import {
  AdminEvents,
  Events,
  TicTacToeEvents,
  type Ack,
  type ChatMessage,
  type OnlinePlayer,
  type PlayerView,
  type RoomView,
  type SessionRevokedPayload,
  type StatePayload,
  type TicTacToePlayer,
  type TicTacToeState,
  type TicTacToeYou,
} from "../../shared/protocol";
import { ClientErrorCode, GatehouseClientError } from "./errors";
import { unref } from "./tokens";

export type PlayerLeft = Pick<PlayerView, "playerId" | "userId" | "username">;
export type PlayerJoined = PlayerLeft & Partial<Pick<PlayerView, "x" | "y">>;
export interface JoinedRoom {
  room: RoomView;
  you: PlayerView;
}

/** Events the server sends (contract section 4). */
export interface ServerToClientEvents {
  [Events.SESSION_REVOKED]: (p: SessionRevokedPayload) => void;
  [Events.STATE]: (p: StatePayload) => void;
  [Events.PLAYER_JOINED]: (p: PlayerJoined) => void;
  [Events.PLAYER_LEFT]: (p: PlayerLeft) => void;
  [Events.CHAT_MESSAGE]: (p: ChatMessage) => void;
  [TicTacToeEvents.MATCHED]: (p: TicTacToeMatched) => void;
  [TicTacToeEvents.STATE]: (p: TicTacToeState) => void;
  [TicTacToeEvents.YOU]: (p: TicTacToeYou) => void;
  [AdminEvents.PLAYERS]: (p: OnlinePlayer[]) => void;
}

/** `ttt:matched`: the game you were seated in. */
export interface TicTacToeMatched {
  room: { id: string; players: TicTacToePlayer[] };
  you: TicTacToePlayer;
}

/** Events the client sends, with their acks. */
export interface ClientToServerEvents {
  [Events.AUTH_REFRESH]: (p: { token: string }, ack: (a: Ack<{ expiresAt: number }>) => void) => void;
  [Events.ROOM_JOIN]: (p: { roomId: string }, ack: (a: Ack<JoinedRoom>) => void) => void;
  [Events.ROOM_LEAVE]: (p: Record<string, never>, ack: (a: Ack) => void) => void;
  [Events.MOVE]: (p: { x: number; y: number }) => void;
  [Events.CHAT_SEND]: (p: { text: string }, ack: (a: Ack) => void) => void;
  [TicTacToeEvents.QUEUE]: (p: Record<string, never>, ack: (a: Ack<{ status: "waiting" | "matched"; roomId?: string }>) => void) => void;
  [TicTacToeEvents.LEAVE]: (p: Record<string, never>, ack: (a: Ack) => void) => void;
  [TicTacToeEvents.PLAY]: (p: { cell: number }, ack: (a: Ack) => void) => void;
  [AdminEvents.WATCH]: (p: Record<string, never>, ack: (a: Ack) => void) => void;
}

export type GameSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type SocketIoOptions = Partial<ManagerOptions & SocketOptions>;

/**
 * A socket of its own (not yet connected), websocket only, with `auth` as a
 * function so a reconnection presents the token current THEN (pitfall 7).
 */
export function openSocket(baseUrl: string, options: SocketIoOptions | undefined, auth: (cb: (data: object) => void) => void): GameSocket {
  return io(baseUrl, {
    ...options,
    // Own manager per client: io() would otherwise share one socket between clients.
    forceNew: true,
    transports: ["websocket"],
    auth,
  });
}

/** Emits and awaits the `{ok}` ack; a refusal or a missing ack becomes a GatehouseClientError. */
export async function emitWithAck<T extends object>(s: GameSocket | undefined, event: string, payload: unknown, timeoutMs: number): Promise<T> {
  if (!s?.connected) throw new GatehouseClientError(ClientErrorCode.NETWORK, "Not connected.");
  let reply: Ack<T>;
  try {
    // The typed emitters are per event; this one generic path casts once.
    reply = (await (s.timeout(timeoutMs) as unknown as Socket).emitWithAck(event, payload)) as Ack<T>;
  } catch (err) {
    throw new GatehouseClientError(ClientErrorCode.TIMEOUT, `No acknowledgement for ${event}.`, undefined, { cause: err });
  }
  if (!reply || typeof reply !== "object" || reply.ok !== true) throw GatehouseClientError.fromWire((reply as { error?: unknown } | undefined)?.error);
  return reply;
}

interface Waiter {
  resolve(s: GameSocket): void;
  reject(e: GatehouseClientError): void;
}

/** Callers of `connect()` waiting for the socket: all settled at once by the next connect or refusal. */
export class ConnectWaiters {
  private waiters: Waiter[] = [];

  /** Waits for `settle`, or rejects with TIMEOUT after `timeoutMs` (the socket keeps trying). */
  wait(timeoutMs: number): Promise<GameSocket> {
    return new Promise<GameSocket>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new GatehouseClientError(ClientErrorCode.TIMEOUT, "Could not connect in time; still trying."));
      }, timeoutMs);
      unref(timer);
      const waiter: Waiter = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  settle(outcome: { socket: GameSocket } | { error: GatehouseClientError }): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if ("socket" in outcome) w.resolve(outcome.socket);
      else w.reject(outcome.error);
    }
  }
}
