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
const FLUSH_MS = 50;

export class RedisPresence extends MemoryPresence {
  private readonly key: string;
  private readonly nodesKey: string;
  private readonly timer: NodeJS.Timeout;
  /** socket id -> entry to write, or null to delete */
  private readonly pending = new Map<string, PresenceEntry | null>();
  private flushTimer: NodeJS.Timeout | undefined;

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
    this.queue(entry.socketId, entry);
  }

  override remove(socketId: string): void {
    super.remove(socketId);
    this.queue(socketId, null);
  }

  /**
   * Presence changes are written in batches every FLUSH_MS: one MULTI per
   * connect was a large share of a handshake's cost (measured by npm run bench).
   */
  private queue(socketId: string, entry: PresenceEntry | null): void {
    this.pending.set(socketId, entry);
    this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  private async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending.clear();
    const added = batch.filter(([, e]) => e !== null).flatMap(([id, e]) => [id, JSON.stringify(e)]);
    const removed = batch.filter(([, e]) => e === null).map(([id]) => id);
    const m = this.redis.multi();
    if (added.length > 0) m.hset(this.key, ...added);
    if (removed.length > 0) m.hdel(this.key, ...removed);
    await m
      .pexpire(this.key, PRESENCE_TTL_MS)
      .exec()
      .catch((err: Error) => this.log.debug({ err: err.message }, "presence write failed (rewritten on reconnect)"));
  }

  override async list(): Promise<PresenceEntry[]> {
    await this.flush(); // our own latest changes first
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
    clearTimeout(this.flushTimer);
    this.pending.clear();
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
