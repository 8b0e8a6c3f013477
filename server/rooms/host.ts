/**
 * Runs one room type on one node: sockets in and out of rooms, validated
 * messages, ticks, state pushes, and the exchange with the other nodes (see
 * define.ts for the model). Leaving is one path for `leaveEvent`, a switch of
 * room, a disconnect and a revocation alike (the gateway disconnects a revoked
 * socket), so no room author writes anything for revocation.
 *
 * Across nodes: a room's shares and ops go on the room bus (bus.ts), which only the nodes holding a
 * player of that room listen to; seats (matchmaking) go to every node as server-side emits (rare).
 */
import type { Server } from "socket.io";
import type { Logger } from "pino";
import { z } from "zod";
import { ErrorCode } from "../../shared/errors";
import type { Clock } from "../clock";
import type { Gateway, GameSocket } from "../realtime/gateway";
import type { AnyRoomDefinition, Player, Room, Who } from "./define";
import { AdapterRoomBus, type RoomBus } from "./bus";
import { RoomError, SocketBudgets, messageListener } from "./messages";

export interface RoomHostDeps {
  io: Server;
  gateway: Gateway;
  clock: Clock;
  log: Logger;
  nodeId: string;
  /** true with the Redis adapter: exchange shares, ops and seats with the other nodes */
  clustered: boolean;
  /** where shares and ops travel when clustered (default: the adapter's server-side emits, heard by every node) */
  bus?: RoomBus;
}

/** The ack of a join, and the body of `seatedEvent`. */
export interface JoinResult {
  room: { id: string; players: Who[] };
  you: Who;
}

/** A remote node's share of a room is dropped if not refreshed for this long (the node died). */
export const REMOTE_STALE_MS = 1000;
const DEFAULT_TICK_HZ = 4;
/** How much longer than one tick a capped room's first join listens for the other nodes' shares. */
const SHARE_MARGIN_MS = 50;

/** Shared by every socket: socket.io passes the socket as `this`. */
type SocketListener = (this: GameSocket, ...args: unknown[]) => void;

const RoomIdPayload = z.object({ roomId: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/) });
const EmptyPayload = z.object({}).loose().optional();

/** What nodes tell each other about a room: seats as server-side emits `gh:room:<name>`, the rest on the room bus. */
type Wire =
  | { kind: "share"; nodeId: string; roomId: string; players: Who[] }
  | { kind: "op"; nodeId: string; roomId: string; op: unknown }
  | { kind: "seat"; nodeId: string; roomId: string; playerId: string; init: unknown };

// The host runs any definition: the type parameters are the definition's business.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
interface LocalRoom extends Room<any, any, any, any> {
  players: Map<string, Player<any>>;
  state: any;
}

export class RoomHost {
  private readonly rooms = new Map<string, LocalRoom>();
  /** socket id -> the room it is in (one room of this type per socket) */
  private readonly roomOf = new Map<string, LocalRoom>();
  /** roomId -> nodeId -> that node's players and when we heard */
  private readonly remote = new Map<string, Map<string, { players: Who[]; at: number; json: string }>>();
  private readonly channel: string;
  private readonly bus: RoomBus | null;
  private readonly timers: NodeJS.Timeout[] = [];
  /** the listeners every socket gets, made once (no closures or budgets per socket) */
  private readonly listeners: [event: string, listener: SocketListener][];

  constructor(
    readonly def: AnyRoomDefinition,
    private readonly deps: RoomHostDeps,
  ) {
    this.channel = `gh:room:${def.name}`;
    const { io, clock } = deps;
    this.bus = deps.clustered ? (deps.bus ?? new AdapterRoomBus(io)) : null;
    if (deps.clustered) io.on(this.channel, (msg: Wire) => this.onWire(msg));
    this.bus?.onMessage((topic, raw) => {
      let msg: Wire;
      try {
        msg = JSON.parse(raw) as Wire;
      } catch {
        return; // not ours to crash on
      }
      if (msg && typeof msg === "object" && msg.kind !== "seat" && typeof msg.roomId === "string" && this.topic(msg.roomId) === topic) this.onWire(msg);
    });
    this.listeners = this.socketListeners();
    deps.gateway.onSocket((socket) => {
      for (const [event, listener] of this.listeners) socket.on(event, listener);
    });
    const tick = setInterval(() => this.tick(clock.now()), this.tickMs);
    const purge = setInterval(() => this.purgeStale(clock.now()), REMOTE_STALE_MS);
    tick.unref();
    purge.unref();
    this.timers.push(tick, purge);
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    for (const roomId of this.rooms.keys()) this.bus?.leave(this.topic(roomId));
  }

  private get tickMs(): number {
    return 1000 / (this.def.tickHz ?? DEFAULT_TICK_HZ);
  }

  /**
   * Runs a room author's hook where no ack can carry the failure (a tick, a leave, a
   * message from another node): a throw is logged, never allowed to kill the node.
   */
  private guard(what: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.deps.log.error({ err, type: this.def.name, what }, "room hook failed");
    }
  }

  /** The room a local socket is in, if any. */
  roomIdOf(playerId: string): string | undefined {
    return this.roomOf.get(playerId)?.id;
  }

  /**
   * Puts a player into a room from the server side (matchmaking): at once if the
   * socket is on this node, else through the node that holds it. `init` reaches
   * `createState` wherever the room is created.
   */
  seat(playerId: string, roomId: string, init: unknown): void {
    const socket = this.socket(playerId);
    if (socket) return void this.seatLocal(socket, roomId, init);
    if (this.deps.clustered) this.deps.io.serverSideEmit(this.channel, { kind: "seat", nodeId: this.deps.nodeId, roomId, playerId, init } satisfies Wire);
  }

  /** Takes a local socket out of its room (no-op if in none). */
  leave(socket: GameSocket): void {
    const room = this.roomOf.get(socket.id);
    const player = room?.players.get(socket.id);
    if (!room || !player) return;
    const now = this.deps.clock.now();
    const who = this.def.view(player);
    room.players.delete(socket.id);
    this.roomOf.delete(socket.id);
    void socket.leave(this.key(room.id));
    this.guard("onLeave", () => this.def.onLeave?.({ room, who, now }));
    // Our share first, on the same Redis connections (and shard) as the broadcast: other nodes drop
    // the player before their clients hear it.
    this.publishShare(room);
    if (this.def.leftEvent) this.deps.io.to(this.key(room.id)).emit(this.def.leftEvent, pickWho(who));
    if (room.players.size === 0) this.dropRoom(room.id);
    else this.pushChange(room, now);
  }

  // ---- sockets ----

  private socketListeners(): [string, SocketListener][] {
    const { def, deps } = this;
    const out: [string, SocketListener][] = [];
    const now = () => deps.clock.now();
    const base = { now, log: deps.log };
    // Joins and leaves share one budget: a join/leave flood is one flood.
    const membership = def.membershipBudget ? new SocketBudgets(def.membershipBudget) : undefined;
    if (def.joinEvent) {
      const join = messageListener(def.joinEvent, { ...base, schema: RoomIdPayload, budget: membership }, async (socket, { roomId }) => {
        await this.hearRoom(roomId);
        const joined = this.joinLocal(socket, roomId, undefined);
        // The adapter subscribes this node to the room's channel at its first player here, with no
        // promise to wait on: until then another node's "joined" broadcast is lost (seen on a Redis
        // Cluster under load). The answer waits until that subscription is in place.
        await this.bus?.barrier(this.topic(roomId));
        return joined;
      });
      out.push([def.joinEvent, join]);
    }
    if (def.leaveEvent) {
      out.push([def.leaveEvent, messageListener(def.leaveEvent, { ...base, schema: EmptyPayload, budget: membership }, (socket) => this.leave(socket))]);
    }
    const inRoom = (socket: GameSocket) => {
      const room = this.roomOf.get(socket.id);
      const player = room?.players.get(socket.id);
      if (!room || !player) throw new RoomError(ErrorCode.VALIDATION_FAILED, `Not in a ${def.name} room.`);
      return { room, player };
    };
    for (const [event, m] of Object.entries(def.messages)) {
      const listener = messageListener(event, { ...base, schema: m.schema, budget: m.budget, precondition: inRoom }, (socket, data) => {
        const { room, player } = inRoom(socket);
        const t = now();
        const result = m.handle({ room, player, data, now: t });
        this.pushChange(room, t);
        return result;
      });
      out.push([event, listener]);
    }
    const host = this;
    out.push([
      "disconnect",
      function (this: GameSocket) {
        host.guard("leave", () => host.leave(this));
      },
    ]);
    return out;
  }

  /**
   * Seats a local socket. The room's first seat here listens to the room bus before the player
   * hears of the game: a move the opponent's node sends (an op) must find this node subscribed.
   */
  private async seatLocal(socket: GameSocket, roomId: string, init: unknown): Promise<void> {
    const topic = this.topic(roomId);
    const listen = this.bus && !this.rooms.has(roomId);
    try {
      if (listen) await this.bus!.join(topic);
      if (!socket.connected) return;
      const joined = this.joinLocal(socket, roomId, init);
      await this.bus?.barrier(topic); // as for a join: the room's adapter channel heard first
      if (this.def.seatedEvent) socket.emit(this.def.seatedEvent, joined);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message, room: roomId, type: this.def.name }, "could not seat a player");
    } finally {
      if (listen) this.bus!.leave(topic); // the room holds its own subscription
    }
  }

  private joinLocal(socket: GameSocket, roomId: string, init: unknown): JoinResult {
    const { def, deps } = this;
    const now = deps.clock.now();
    if (def.maxPlayers !== undefined) {
      const inRoom = this.rooms.get(roomId)?.views() ?? this.remoteViews(roomId, now);
      // No contract code for this: the generic FORBIDDEN, with a message that names the limit.
      if (inRoom.filter((p) => p.playerId !== socket.id).length >= def.maxPlayers) throw new RoomError(ErrorCode.FORBIDDEN, roomFullMessage(def.maxPlayers));
    }
    // One room of this type per socket; joining again (even the same room) starts a fresh player.
    this.leave(socket);
    let room = this.rooms.get(roomId);
    if (!room) {
      this.rooms.set(roomId, (room = this.createRoom(roomId, init)));
      // Listen to the room while it has a player here (dropRoom stops).
      void this.bus?.join(this.topic(roomId)).catch((err: unknown) => deps.log.warn({ err: (err as Error).message, room: roomId, type: def.name }, "room bus subscription failed"));
    }
    const who: Who = { playerId: socket.id, userId: socket.data.claims.sub, username: socket.data.username };
    const player: Player<unknown> = { ...who, state: undefined, send: (event, payload) => socket.emit(event, payload) };
    try {
      player.state = def.onJoin({ room, who, now });
    } catch (err) {
      if (room.players.size === 0) this.dropRoom(roomId);
      throw err;
    }
    room.players.set(socket.id, player);
    this.roomOf.set(socket.id, room);
    void socket.join(this.key(roomId));
    this.publishShare(room);
    const you = def.view(player) as Who;
    if (def.joinedEvent) socket.to(this.key(roomId)).emit(def.joinedEvent, you);
    this.pushChange(room, now);
    return { room: { id: roomId, players: room.views() }, you };
  }

  private createRoom(roomId: string, init: unknown): LocalRoom {
    const host = this;
    const room: LocalRoom = {
      id: roomId,
      state: this.def.createState(roomId, init),
      players: new Map(),
      get local() {
        return [...room.players.values()];
      },
      views: () => [...[...room.players.values()].map((p) => this.def.view(p) as Who), ...this.remoteViews(roomId, this.deps.clock.now())],
      broadcast: (event, payload) => void this.deps.io.to(this.key(roomId)).emit(event, payload),
      apply(op) {
        host.def.applyOp?.(room.state, op);
        host.publish({ kind: "op", nodeId: host.deps.nodeId, roomId, op });
        host.pushChange(room, host.deps.clock.now());
      },
      changed: () => {
        this.publishShare(room);
        this.pushChange(room, this.deps.clock.now());
      },
    };
    return room;
  }

  /** Forgets a room with no player left here and stops listening to it. */
  private dropRoom(roomId: string): void {
    this.rooms.delete(roomId);
    this.bus?.leave(this.topic(roomId));
  }

  /**
   * Before a client's join of a room this node has no player in: a node hears a room's shares only
   * while it listens to it, so for a capped room (maxPlayers) it listens for one share period first
   * (every node with players shares every tick) and counts them. Uncapped rooms join at once; their
   * other players show up in the next `state`.
   */
  private async hearRoom(roomId: string): Promise<void> {
    if (!this.bus || this.def.maxPlayers === undefined || this.rooms.has(roomId)) return;
    const topic = this.topic(roomId);
    try {
      await this.bus.join(topic);
      // A time window by design: shares have no end marker, each node sends one per tick.
      await new Promise((resolve) => setTimeout(resolve, this.tickMs + SHARE_MARGIN_MS));
    } finally {
      this.bus.leave(topic); // the room, if the join creates it, holds its own subscription
    }
  }

  // ---- pushes and ticks ----

  private pushChange(room: LocalRoom, now: number): void {
    if (this.def.state?.push === "change") this.pushState(room, now);
    if (this.def.playerState) this.pushPlayerState(room, now);
  }

  private pushState(room: LocalRoom, now: number): void {
    if (!this.def.state || room.players.size === 0) return;
    this.deps.io.local.to(this.key(room.id)).emit(this.def.state.event, this.def.state.build(room, now));
  }

  private pushPlayerState(room: LocalRoom, now: number): void {
    const ps = this.def.playerState;
    if (!ps) return;
    for (const p of room.players.values()) p.send(ps.event, ps.build(room, p, now));
  }

  private tick(now: number): void {
    for (const room of this.rooms.values()) {
      this.guard("tick", () => {
        this.publishShare(room);
        this.def.onTick?.({ room, now });
        if (this.def.state?.push === "tick") this.pushState(room, now);
      });
    }
  }

  // ---- across nodes ----

  private publish(msg: Extract<Wire, { kind: "share" | "op" }>): void {
    this.bus?.publish(this.topic(msg.roomId), JSON.stringify(msg));
  }

  private publishShare(room: LocalRoom): void {
    if (!this.deps.clustered) return;
    this.publish({ kind: "share", nodeId: this.deps.nodeId, roomId: room.id, players: [...room.players.values()].map((p) => this.def.view(p) as Who) });
  }

  private onWire(msg: Wire): void {
    this.guard(`wire ${String(msg?.kind)}`, () => this.applyWire(msg));
  }

  private applyWire(msg: Wire): void {
    if (!msg || typeof msg !== "object" || typeof msg.roomId !== "string" || msg.nodeId === this.deps.nodeId) return;
    const now = this.deps.clock.now();
    const room = this.rooms.get(msg.roomId);
    switch (msg.kind) {
      case "share": {
        if (!Array.isArray(msg.players)) return;
        let shares = this.remote.get(msg.roomId);
        if (!shares) this.remote.set(msg.roomId, (shares = new Map()));
        const json = JSON.stringify(msg.players);
        const changed = shares.get(msg.nodeId)?.json !== json;
        shares.set(msg.nodeId, { players: msg.players, at: now, json });
        if (changed && room) this.pushChange(room, now);
        return;
      }
      case "op":
        if (!room) return;
        this.def.applyOp?.(room.state, msg.op);
        this.pushChange(room, now);
        return;
      case "seat": {
        const socket = this.socket(msg.playerId);
        if (socket) void this.seatLocal(socket, msg.roomId, msg.init);
        return;
      }
    }
  }

  private remoteViews(roomId: string, now: number): Who[] {
    const out: Who[] = [];
    for (const share of this.remote.get(roomId)?.values() ?? []) if (now - share.at <= REMOTE_STALE_MS) out.push(...share.players);
    return out;
  }

  /**
   * Drops the shares no node refreshed for REMOTE_STALE_MS, in every room (shares of a room this
   * node just left, or only listened to before a join, would pile up otherwise). A node that died said nothing
   * for its players, so this node says they left, to its own clients and to onLeave.
   */
  private purgeStale(now: number): void {
    for (const [roomId, shares] of this.remote) {
      for (const [nodeId, share] of shares) {
        if (now - share.at <= REMOTE_STALE_MS) continue;
        shares.delete(nodeId);
        const room = this.rooms.get(roomId);
        if (!room) continue;
        for (const who of share.players) {
          if (this.def.leftEvent) this.deps.io.local.to(this.key(roomId)).emit(this.def.leftEvent, pickWho(who));
          this.guard("onLeave", () => this.def.onLeave?.({ room, who, now }));
        }
        this.guard("push", () => this.pushChange(room, now));
      }
      if (shares.size === 0) this.remote.delete(roomId);
    }
  }

  private socket(playerId: string): GameSocket | undefined {
    return this.deps.io.of("/").sockets.get(playerId) as GameSocket | undefined;
  }

  /** The room bus topic: per type, so two types may use the same room id. */
  private topic(roomId: string): string {
    return `${this.def.name}:${roomId}`;
  }

  /** The socket.io room, hash-tagged like the bus channel (same Redis Cluster shard: bus.ts). */
  private key(roomId: string): string {
    return `room:{${this.topic(roomId)}}`;
  }
}

/** The refusal of a join beyond `maxPlayers`. */
const roomFullMessage = (max: number): string => `The room is full (at most ${max} ${max === 1 ? "player" : "players"}).`;

const pickWho = (v: Who): Who => ({ playerId: v.playerId, userId: v.userId, username: v.username });

/** Starts a host per room type on this node; `close()` stops their timers. */
export function hostRooms(deps: RoomHostDeps, defs: AnyRoomDefinition[]): { hosts: Map<string, RoomHost>; close(): void } {
  const hosts = new Map<string, RoomHost>();
  for (const def of defs) {
    if (hosts.has(def.name)) throw new TypeError(`two room types named ${def.name}`);
    hosts.set(def.name, new RoomHost(def, deps));
  }
  return { hosts, close: () => hosts.forEach((h) => h.close()) };
}
