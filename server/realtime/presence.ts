/**
 * Who is online, across the cluster, for /admin/players and the `online` flag
 * of GET /sessions. Embedded mode: this node's sockets. Redis mode: one hash per
 * node with a short expiry refreshed by a heartbeat, so a dead node's players
 * vanish within PRESENCE_TTL_MS (pitfall 4: no fetchSockets, no JWTs over Redis),
 * plus a per-user index so one user's view costs that user's sockets, not the cluster's.
 *
 * Redis keys (the same on one primary and on a Redis Cluster; no MULTI or pipeline spans two keys,
 * so no hash tags are needed and each key lives on its own slot):
 *   <prefix>presence:nodes            zset   nodeId -> last heartbeat (ms)
 *   <prefix>presence:<nodeId>         hash   socketId -> PresenceEntry JSON; PRESENCE_TTL_MS, refreshed by the heartbeat
 *   <prefix>presence:user:<userId>    hash   socketId -> "<nodeId> <sessionId>"; USER_INDEX_TTL_MS, refreshed by every
 *                                            node holding one of its sockets. An entry counts only while its node's
 *                                            hash still holds that socket, so a dead node's entries vanish with it.
 * Written node hash first, user index after: a reader never sees an index entry whose socket its
 * node has not written yet (it would drop it as dead).
 */
import { Cluster, type ChainableCommander } from "ioredis";
import type { RedisClient } from "../redis-clients";
import type { Logger } from "pino";
import type { OnlinePlayer } from "../../shared/protocol";
import { addTo, removeFrom } from "../util/multimap";

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
  /** every online socket in the cluster (admin view) */
  list(): Promise<PresenceEntry[]>;
  /** the session ids of `userId` with a live socket anywhere in the cluster; costs that user's sockets only */
  sessionsOnline(userId: string): Promise<Set<string>>;
  /** after this node's sockets changed, once `list()` anywhere in the cluster shows it (Redis: after the batch is written); must not throw */
  onChange(listener: () => void): void;
  close(): Promise<void>;
}

/** The admin view of `list()`: one row per user (by name), its sockets as sessions with their node. */
export function onlinePlayers(entries: PresenceEntry[]): OnlinePlayer[] {
  const byUser = new Map<string, OnlinePlayer>();
  for (const p of entries) {
    let player = byUser.get(p.userId);
    if (!player) byUser.set(p.userId, (player = { userId: p.userId, username: p.username, sessions: [] }));
    player.sessions.push({ sessionId: p.sessionId, nodeId: p.nodeId, connectedAt: new Date(p.connectedAt).toISOString() });
  }
  return [...byUser.values()].sort((a, b) => a.username.localeCompare(b.username));
}

export class MemoryPresence implements Presence {
  protected readonly local = new Map<string, PresenceEntry>();
  /** userId -> socket ids on this node */
  protected readonly byUser = new Map<string, Set<string>>();
  private readonly changeListeners: (() => void)[] = [];
  add(entry: PresenceEntry): void {
    this.local.set(entry.socketId, entry);
    addTo(this.byUser, entry.userId, entry.socketId);
    this.changed();
  }
  remove(socketId: string): void {
    const entry = this.local.get(socketId);
    if (!entry) return;
    this.local.delete(socketId);
    removeFrom(this.byUser, entry.userId, socketId);
    this.changed();
  }
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }
  /** Here the change is visible at once; RedisPresence tells once it is written. */
  protected changed(): void {
    this.notifyChange();
  }
  protected notifyChange(): void {
    for (const listener of this.changeListeners) listener();
  }
  async list(): Promise<PresenceEntry[]> {
    return [...this.local.values()];
  }
  async sessionsOnline(userId: string): Promise<Set<string>> {
    return new Set([...(this.byUser.get(userId) ?? [])].map((id) => this.local.get(id)!.sessionId));
  }
  async close(): Promise<void> {
    this.local.clear();
    this.byUser.clear();
  }
}

export const PRESENCE_TTL_MS = 6000;
const HEARTBEAT_MS = 2000;
const FLUSH_MS = 50;
/** Per-user index keys outlive a dead node by at most this; live nodes refresh theirs every USER_INDEX_REFRESH_MS. */
const USER_INDEX_TTL_MS = 10 * 60_000;
const USER_INDEX_REFRESH_MS = 60_000;

export class RedisPresence extends MemoryPresence {
  private readonly key: string;
  private readonly nodesKey: string;
  private readonly timer: NodeJS.Timeout;
  private readonly userIndexTimer: NodeJS.Timeout;
  /** socket id -> the entry and whether it is to be written or deleted */
  private readonly pending = new Map<string, { entry: PresenceEntry; live: boolean }>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** the write of a batch, while in flight */
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly nodeId: string,
    private readonly log: Logger,
    private readonly prefix = "gh:",
  ) {
    super();
    this.key = `${prefix}presence:${nodeId}`;
    this.nodesKey = `${prefix}presence:nodes`;
    this.timer = setInterval(() => this.heartbeat(), HEARTBEAT_MS).unref();
    this.userIndexTimer = setInterval(() => this.refreshUserIndex(), USER_INDEX_REFRESH_MS).unref();
    // After Redis comes back (possibly empty), write everything we hold again.
    redis.on("ready", () => this.rewrite());
    this.heartbeat();
  }

  override add(entry: PresenceEntry): void {
    super.add(entry);
    this.queue(entry, true);
  }

  override remove(socketId: string): void {
    const entry = this.local.get(socketId);
    if (!entry) return;
    super.remove(socketId);
    this.queue(entry, false);
  }

  /** Other nodes read Redis: they are told after flush() wrote the batch, not now. */
  protected override changed(): void {}

  private userKey(userId: string): string {
    return `${this.prefix}presence:user:${userId}`;
  }

  /**
   * Presence changes are written in batches every FLUSH_MS: one MULTI per
   * connect was a large share of a handshake's cost (measured by npm run bench).
   */
  private queue(entry: PresenceEntry, live: boolean): void {
    // Connected and gone again before its batch was written (a page reload, a reconnect storm):
    // Redis never saw the socket, so there is nothing to write. (A socket id is added only once.)
    if (!live && this.pending.get(entry.socketId)?.live) {
      this.pending.delete(entry.socketId);
      return;
    }
    this.pending.set(entry.socketId, { entry, live });
    this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /**
   * Writes the pending changes. A reader calls it to see its own node's latest changes: it also
   * waits for a write already in flight (the timer's), whose batch has left `pending` but may not
   * be in Redis yet (a socket connected just before showed as offline).
   */
  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    this.flushing = this.write().finally(() => (this.flushing = null));
    await this.flushing;
  }

  private async write(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending.clear();
    const added = batch.filter((p) => p.live).flatMap(({ entry }) => [entry.socketId, JSON.stringify(entry)]);
    const removed = batch.filter((p) => !p.live).map(({ entry }) => entry.socketId);
    const failed = (err: Error) => this.log.debug({ err: err.message }, "presence write failed (rewritten on reconnect)");
    // The node hash first (one key: one slot on a cluster), then each user's index entry in its own
    // transaction (its TTL with it): an index entry never names a socket the node hash lacks.
    const node = this.redis.multi();
    if (added.length > 0) node.hset(this.key, ...added);
    if (removed.length > 0) node.hdel(this.key, ...removed);
    const written = await node
      .pexpire(this.key, PRESENCE_TTL_MS)
      .exec()
      .then(() => true, (err: Error) => (failed(err), false));
    if (!written) return;
    // One HSET / HDEL per user, not per socket: a revoke-all or a burst of connects names the same
    // users many times (profiles of both showed a Redis command object per socket).
    const byUser = new Map<string, { set: string[]; del: string[] }>();
    for (const { entry, live } of batch) {
      let changes = byUser.get(entry.userId);
      if (!changes) byUser.set(entry.userId, (changes = { set: [], del: [] }));
      if (live) changes.set.push(entry.socketId, `${entry.nodeId} ${entry.sessionId}`);
      else changes.del.push(entry.socketId);
    }
    const writeUser = (tx: ChainableCommander, userId: string, { set, del }: { set: string[]; del: string[] }): ChainableCommander => {
      const key = this.userKey(userId);
      if (set.length > 0) tx.hset(key, ...set).pexpire(key, USER_INDEX_TTL_MS);
      if (del.length > 0) tx.hdel(key, ...del);
      return tx;
    };
    if (this.redis instanceof Cluster) {
      // A transaction must stay on one slot: one per user's index key.
      await Promise.all([...byUser].map(([userId, changes]) => writeUser(this.redis.multi(), userId, changes).exec().catch(failed)));
    } else {
      // One primary: the whole batch in one transaction, one round trip.
      const index = this.redis.multi();
      for (const [userId, changes] of byUser) writeUser(index, userId, changes);
      await index.exec().catch(failed);
    }
    this.notifyChange();
  }

  override async list(): Promise<PresenceEntry[]> {
    await this.flush(); // our own latest changes first
    const now = Date.now();
    const nodes = await this.redis.zrangebyscore(this.nodesKey, now - PRESENCE_TTL_MS, "+inf");
    // One read per node hash, sent together (keys on different slots: no pipeline on a cluster).
    const hashes = await Promise.all(nodes.map((node) => this.redis.hgetall(`${this.prefix}presence:${node}`).catch(() => null)));
    const out: PresenceEntry[] = [];
    for (const hash of hashes) {
      if (!hash) continue;
      for (const json of Object.values(hash)) {
        try {
          out.push(JSON.parse(json) as PresenceEntry);
        } catch {
          // A corrupt entry is skipped, not fatal to the admin view.
        }
      }
    }
    return out;
  }

  /**
   * O(that user's sockets): the user's index, then one HEXISTS per entry on its node's hash, which
   * expires with the node's heartbeat (a dead node's entries stop counting as they do in list()).
   */
  override async sessionsOnline(userId: string): Promise<Set<string>> {
    await this.flush(); // our own latest changes first
    const index = await this.redis.hgetall(this.userKey(userId));
    const entries = Object.entries(index).map(([socketId, value]) => {
      const cut = value.lastIndexOf(" "); // session ids have no space; node ids may
      return { socketId, nodeId: value.slice(0, cut), sessionId: value.slice(cut + 1) };
    });
    if (entries.length === 0) return new Set();
    const replies = await Promise.all(entries.map((e) => this.redis.hexists(`${this.prefix}presence:${e.nodeId}`, e.socketId).catch(() => null)));
    const online = new Set<string>();
    const dead: string[] = [];
    entries.forEach((e, i) => {
      const exists = replies[i];
      if (exists === null || exists === 1) online.add(e.sessionId); // an unreadable entry counts as online: the view errs that way
      else dead.push(e.socketId);
    });
    // Socket ids are never reused, so a dead entry can be dropped without racing a live one.
    if (dead.length > 0) void this.redis.hdel(this.userKey(userId), ...dead).catch(() => undefined);
    return online;
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.userIndexTimer);
    clearTimeout(this.flushTimer);
    this.pending.clear();
    // Each key on its own (they may live on different primaries).
    await Promise.all([
      this.redis.del(this.key),
      this.redis.zrem(this.nodesKey, this.nodeId),
      ...[...this.local.values()].map((e) => this.redis.hdel(this.userKey(e.userId), e.socketId)),
    ]).catch(() => undefined);
    await super.close();
  }

  private heartbeat(): void {
    const now = Date.now();
    this.redis
      .multi()
      .zadd(this.nodesKey, now, this.nodeId)
      .zremrangebyscore(this.nodesKey, "-inf", now - 10 * PRESENCE_TTL_MS)
      .exec()
      .catch(() => undefined);
    this.redis.pexpire(this.key, PRESENCE_TTL_MS).catch(() => undefined);
  }

  /** Keeps the index keys of users with a socket here from expiring (a dead node's ones do, in time). */
  private refreshUserIndex(): void {
    if (this.byUser.size === 0) return;
    for (const userId of this.byUser.keys()) this.redis.pexpire(this.userKey(userId), USER_INDEX_TTL_MS).catch(() => undefined);
  }

  private rewrite(): void {
    const m = this.redis.multi().del(this.key);
    for (const e of this.local.values()) m.hset(this.key, e.socketId, JSON.stringify(e));
    m.pexpire(this.key, PRESENCE_TTL_MS)
      .exec()
      .then(() => {
        this.heartbeat();
        // The index after the node hash, as in flush.
        for (const e of this.local.values()) {
          const key = this.userKey(e.userId);
          this.redis.multi().hset(key, e.socketId, `${e.nodeId} ${e.sessionId}`).pexpire(key, USER_INDEX_TTL_MS).exec().catch(() => undefined);
        }
        this.notifyChange();
      })
      .catch(() => undefined);
  }
}
