/**
 * The room bus: how the nodes holding players of one room tell each other about it (each node's
 * share of the players every tick, and ops), on a pub/sub channel of that room's own. A node
 * listens to a room's channel only while it has a player in the room, so a room's per-tick traffic
 * reaches only the nodes that have players in it: O(players' nodes) per room, not O(all nodes).
 *
 * Redis channels (no keys):
 *   <prefix>{<topic>}   one per active room (topic "<type>:<roomId>"); SSUBSCRIBE / SPUBLISH on a
 *                       Redis Cluster (the channel lives on its slot's shard, ioredis re-subscribes
 *                       after a failover or a slot migration: pitfall 17), SUBSCRIBE / PUBLISH on
 *                       one primary (REDIS_URL may be a Redis 6.2). prefix "gh:room:". The hash tag
 *                       puts it on the shard of the room's socket.io channel ("gh:io#/#room:{<topic>}#",
 *                       RoomHost names its socket.io room so), so on the same connections as the
 *                       adapter a share and a broadcast keep their order.
 * Delivery is at-most-once, as before: a lost share is replaced by the next tick's.
 */
import type { Server } from "socket.io";
import type { RedisClient } from "../redis-clients";

export interface RoomBus {
  /** Starts receiving `topic` (counted: as many leave() as join()); resolves once subscribed. */
  join(topic: string): Promise<void>;
  leave(topic: string): void;
  /** To every other node that joined `topic` (and to this one, which ignores its own messages). */
  publish(topic: string, message: string): void;
  /**
   * Resolves once every subscription issued before it on the subscriber connection of `topic`'s
   * shard is in place (the socket.io adapter's for the room too: it shares that connection).
   */
  barrier(topic: string): Promise<void>;
  onMessage(handler: (topic: string, message: string) => void): void;
}

export class RedisRoomBus implements RoomBus {
  private readonly joined = new Map<string, { count: number; subscribed: Promise<void> }>();
  private readonly handlers: ((topic: string, message: string) => void)[] = [];

  constructor(
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    /** SSUBSCRIBE / SPUBLISH (Redis Cluster) rather than SUBSCRIBE / PUBLISH */
    private readonly sharded: boolean,
    private readonly prefix = "gh:room:",
  ) {
    const deliver = (channel: string, message: string) => {
      if (!channel.startsWith(`${prefix}{`) || !channel.endsWith("}")) return; // the adapter's own
      const topic = channel.slice(prefix.length + 1, -1);
      for (const h of this.handlers) h(topic, message);
    };
    sub.on(sharded ? "smessage" : "message", deliver);
  }

  join(topic: string): Promise<void> {
    const entry = this.joined.get(topic);
    if (entry) {
      entry.count++;
      return entry.subscribed;
    }
    const channel = this.channel(topic);
    // Rejections are kept for the caller; ioredis re-subscribes by itself after a reconnect.
    const subscribed = (this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel)).then(() => undefined);
    subscribed.catch(() => undefined);
    this.joined.set(topic, { count: 1, subscribed });
    return subscribed;
  }

  leave(topic: string): void {
    const entry = this.joined.get(topic);
    if (!entry || --entry.count > 0) return;
    this.joined.delete(topic);
    const channel = this.channel(topic);
    void (this.sharded ? this.sub.sunsubscribe(channel) : this.sub.unsubscribe(channel)).catch(() => undefined);
  }

  publish(topic: string, message: string): void {
    const channel = this.channel(topic);
    void (this.sharded ? this.pub.spublish(channel, message) : this.pub.publish(channel, message)).catch(() => undefined);
  }

  /** Subscribing again to a channel we hold is a no-op for Redis, answered in order on its connection. */
  barrier(topic: string): Promise<void> {
    if (!this.joined.has(topic)) return Promise.resolve();
    const channel = this.channel(topic);
    return (this.sharded ? this.sub.ssubscribe(channel) : this.sub.subscribe(channel)).then(
      () => undefined,
      () => undefined, // a subscriber down: the join answers anyway, as before
    );
  }

  onMessage(handler: (topic: string, message: string) => void): void {
    this.handlers.push(handler);
  }

  private channel(topic: string): string {
    return `${this.prefix}{${topic}}`;
  }

  /** topics this node listens to now (tests, metrics) */
  topics(): string[] {
    return [...this.joined.keys()];
  }
}

/**
 * The bus over the socket.io adapter's server-side emits, for a host that has an adapter but no
 * Redis of its own to give (an embedding application): every node hears every room, as before
 * the room bus existed.
 */
export class AdapterRoomBus implements RoomBus {
  private static readonly EVENT = "gh:room-bus";

  constructor(private readonly io: Server) {}

  async join(): Promise<void> {}
  leave(): void {}
  async barrier(): Promise<void> {}
  publish(topic: string, message: string): void {
    this.io.serverSideEmit(AdapterRoomBus.EVENT, topic, message);
  }
  onMessage(handler: (topic: string, message: string) => void): void {
    this.io.on(AdapterRoomBus.EVENT, (topic: unknown, message: unknown) => {
      if (typeof topic === "string" && typeof message === "string") handler(topic, message);
    });
  }
}
