/**
 * What a room type is: a name, validated messages, join / leave / tick hooks and
 * the state its clients see. `defineRoom` only checks and types the definition;
 * a RoomHost (host.ts) runs it on one node. See docs/rooms.md.
 *
 * How a room spans nodes: each node is authoritative for the players connected
 * to it (their private state `P` never leaves the node). What the room knows of
 * players elsewhere is their public view `V`, which every node publishes for its
 * players on every change and every tick (a silent node's share is dropped after
 * a second: it died). Room state `S` is a copy on each node holding the room,
 * changed only through `apply(op)`: the op runs here and on every other node, so
 * `applyOp` must be deterministic. Broadcasts go through the socket.io adapter.
 */
import type { z } from "zod";
import type { BudgetSpec } from "./messages";

/** Who a player is: one player per socket (a user may play from two tabs). */
export interface Who {
  /** the socket id */
  playerId: string;
  userId: string;
  username: string;
}

/** A player connected to this node. */
export interface Player<P> extends Who {
  /** this node's private state of the player */
  state: P;
  /** sends an event to this player only */
  send(event: string, payload: unknown): void;
}

/** One room as seen from this node, handed to every hook. */
export interface Room<S, P, V extends Who, O> {
  readonly id: string;
  /** the room state (a copy on every node holding the room; change it with `apply`) */
  readonly state: S;
  /** the players connected to this node */
  readonly local: readonly Player<P>[];
  /** every player in the room, on every node, as their public view */
  views(): V[];
  /** to every client in the room, on every node */
  broadcast(event: string, payload: unknown): void;
  /** changes the room state here and on every other node holding the room */
  apply(op: O): void;
  /** a local player's view changed outside a message handler: publish and push now */
  changed(): void;
}

export interface MessageContext<S, P, V extends Who, O, T> {
  room: Room<S, P, V, O>;
  player: Player<P>;
  data: T;
  now: number;
}

export interface MessageDef<S, P, V extends Who, O, T> {
  /** the payload schema; a refused payload is acked VALIDATION_FAILED naming the field */
  schema: z.ZodType<T>;
  /** per player; refused with RATE_LIMITED (or dropped) when spent */
  budget?: BudgetSpec;
  /** returns extra ack fields; throw a RoomError to refuse */
  handle(ctx: MessageContext<S, P, V, O, T>): object | void;
}

export interface RoomDefinition<S, P, V extends Who, O, M extends Record<string, unknown>> {
  /** unique per server; names the cross-node channel */
  name: string;
  /** checked against the room as this node sees it (nodes admitting at the same instant may overshoot by one) */
  maxPlayers?: number;
  /** clients join rooms by id with this event (`{roomId}`); omit it for rooms the server seats players in */
  joinEvent?: string;
  /** clients leave with this event (`{}`) */
  leaveEvent?: string;
  /** per player, for joins and leaves together (they are broadcast to the room) */
  membershipBudget?: BudgetSpec;
  /** sent to the other clients of the room with the newcomer's view */
  joinedEvent?: string;
  /** sent to the room with `{playerId, userId, username}` of whoever left */
  leftEvent?: string;
  /** sent to a player the server seated (`seat`), with the same body as a join ack */
  seatedEvent?: string;
  /** a fresh room state on this node; `init` is what `seat` was given (undefined for client joins) */
  createState(roomId: string, init: unknown): S;
  /** the one way room state changes, on every node alike: deterministic, no clock, no I/O */
  applyOp?(state: S, op: O): void;
  /** a player joins on this node: returns its private state */
  onJoin(ctx: { room: Room<S, P, V, O>; who: Who; now: number }): P;
  /**
   * A player left (leave, disconnect, revocation: all the same path). Runs on the
   * player's node, or, if that node died, on each node holding the room. So an op
   * applied here must be harmless when applied twice.
   */
  onLeave?(ctx: { room: Room<S, P, V, O>; who: V; now: number }): void;
  /** a local player's public view (shared with the other nodes and clients) */
  view(player: Player<P>): V;
  /** the messages a player in a room may send, by event name */
  messages: { [K in keyof M]: MessageDef<S, P, V, O, M[K]> };
  /** ticks per second while the room has local players (default 4: shares stay fresh) */
  tickHz?: number;
  onTick?(ctx: { room: Room<S, P, V, O>; now: number }): void;
  /** room state pushed to its clients: every tick, or after every change */
  state?: { event: string; push: "tick" | "change"; build(room: Room<S, P, V, O>, now: number): unknown };
  /** per-player state pushed to each player after every change */
  playerState?: { event: string; build(room: Room<S, P, V, O>, player: Player<P>, now: number): unknown };
}

/**
 * Checks and types a room definition. Two calls, so that you name the state
 * types and TypeScript still infers each message's payload from its schema:
 * `defineRoom<RoomState, PlayerState, PlayerView, Op>()({ name: ..., ... })`.
 */
export function defineRoom<S, P, V extends Who, O = never>() {
  return <M extends Record<string, unknown>>(def: RoomDefinition<S, P, V, O, M>): RoomDefinition<S, P, V, O, M> => {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(def.name)) throw new TypeError(`room name must be lowercase letters, digits or -: ${def.name}`);
    if (def.leaveEvent && !def.joinEvent && !def.seatedEvent) throw new TypeError(`room ${def.name}: a leave event without a way in`);
    return def;
  };
}

/** Any room definition (the host does not care about the type parameters). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoomDefinition = RoomDefinition<any, any, any, any, any>;
