/**
 * Who is online, across the cluster, for /admin/players and the `online` flag
 * of GET /sessions. Embedded mode: this node's sockets. Redis mode: one hash per
 * node with a short expiry refreshed by a heartbeat, so a dead node's players
 * vanish within PRESENCE_TTL_MS (pitfall 4: no fetchSockets, no JWTs over Redis).
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";

export interface PresenceEntry {
  socketId: string;
  userId: string;
  username: string;
  sessionId: string;
  nodeId: string;
  /** epoch ms */
  connectedAt: number;
}

export interface Presence {
  add(entry: PresenceEntry): void;
  remove(socketId: string): void;
  /** every online socket in the cluster */
  list(): Promise<PresenceEntry[]>;
  close(): Promise<void>;
}

export class MemoryPresence implements Presence {
  protected readonly local = new Map<string, PresenceEntry>();
  add(entry: PresenceEntry): void {
    this.local.set(entry.socketId, entry);
  }
  remove(socketId: string): void {
    this.local.delete(socketId);
  }
  async list(): Promise<PresenceEntry[]> {
    return [...this.local.values()];
  }
  async close(): Promise<void> {
    this.local.clear();
  }
}

export const PRESENCE_TTL_MS = 6000;
const HEARTBEAT_MS = 2000;

export class RedisPresence extends MemoryPresence {
  private readonly key: string;
  private readonly nodesKey: string;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly prefix = "gh:",
  ) {
    super();
    this.key = `${prefix}presence:${nodeId}`;
    this.nodesKey = `${prefix}presence:nodes`;
    this.timer = setInterval(() => this.heartbeat(), HEARTBEAT_MS).unref();
    // After Redis comes back (possibly empty), write everything we hold again.
    redis.on("ready", () => this.rewrite());
    this.heartbeat();
  }

  override add(entry: PresenceEntry): void {
    super.add(entry);
    this.redis
      .multi()
      .hset(this.key, entry.socketId, JSON.stringify(entry))
      .pexpire(this.key, PRESENCE_TTL_MS)
      .exec()
      .catch((err: Error) => this.log.debug({ err: err.message }, "presence add failed (rewritten on reconnect)"));
  }

  override remove(socketId: string): void {
    super.remove(socketId);
    this.redis.hdel(this.key, socketId).catch(() => undefined);
  }

  override async list(): Promise<PresenceEntry[]> {
    const now = Date.now();
    const nodes = await this.redis.zrangebyscore(this.nodesKey, now - PRESENCE_TTL_MS, "+inf");
    const pipeline = this.redis.pipeline();
    for (const node of nodes) pipeline.hgetall(`${this.prefix}presence:${node}`);
    const replies = (await pipeline.exec()) ?? [];
    const out: PresenceEntry[] = [];
    for (const [err, hash] of replies) {
      if (err || !hash) continue;
      for (const json of Object.values(hash as Record<string, string>)) {
        try {
          out.push(JSON.parse(json) as PresenceEntry);
        } catch {
          // A corrupt entry is skipped, not fatal to the admin view.
        }
      }
    }
    return out;
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.multi().del(this.key).zrem(this.nodesKey, this.nodeId).exec().catch(() => undefined);
    await super.close();
  }

  private heartbeat(): void {
    const now = Date.now();
    this.redis
      .multi()
      .zadd(this.nodesKey, now, this.nodeId)
      .zremrangebyscore(this.nodesKey, "-inf", now - 10 * PRESENCE_TTL_MS)
      .pexpire(this.key, PRESENCE_TTL_MS)
      .exec()
      .catch(() => undefined);
  }

  private rewrite(): void {
    const m = this.redis.multi().del(this.key);
    for (const e of this.local.values()) m.hset(this.key, e.socketId, JSON.stringify(e));
    m.pexpire(this.key, PRESENCE_TTL_MS)
      .exec()
      .then(() => this.heartbeat())
      .catch(() => undefined);
  }
}
