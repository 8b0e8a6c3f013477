/**
 * MemoryStore: the Store for embedded (single-process) mode, in plain Maps.
 *
 * Expiry: records and marks carry their expiresAt and are dropped lazily on
 * read and by an unref'd sweep every 5 s, so state follows the live tokens.
 * The backend never reads Date.now() (see store.ts): "store time" is the
 * injected `now` option when given, else the latest time callers have shown
 * it (every `now` argument and every createdAt), which is what the caller's
 * clock says.
 *
 * Records are copied in and out, so callers can never mutate stored state
 * (and behave as with Redis, which hands out fresh objects).
 *
 * Each revocation applied is published into the MemoryFeed given as `feed` (memory-feed.ts),
 * which delivers it in-process; the store itself knows nothing of subscribers.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { AuditEntry } from "../../shared/protocol";
import {
  REFRESH_TRAIL,
  type CreateSessionResult,
  type MarkSnapshot,
  type Marks,
  type NewSession,
  type RevocationChange,
  type RevocationEvent,
  type RotateResult,
  type Rotation,
  type SessionRecord,
  type Store,
  type TokenBasis,
  type UserRecord,
} from "./store";
import type { MemoryFeed } from "./memory-feed";
import { addTo, removeFrom } from "../util/multimap";
import { banMarkExpiry, globalCutoff, markExpiry, nextSecond } from "../revocation/mark-rules";

const SWEEP_INTERVAL_MS = 5_000;
const AUDIT_MAX = 10_000;

interface StoredSession {
  rec: SessionRecord;
  /** revoked sessions stay as tombstones until their expiry, so `invalid` can name the user */
  state: "live" | "revoked";
  /** the global refresh generation at creation: a revoke-all moves it on */
  gen: number;
  /** SHA-256 of the live refresh token */
  cur: string;
  /** the token rotated last, when, and its successor sealed (REFRESH_REUSE_GRACE) */
  prev: { hash: string; at: number; nextSealed: string } | null;
  /** older rotated hashes, newest first, bounded (REFRESH_TRAIL - 1) */
  trail: string[];
}
interface Mark {
  expiresAt: number;
  reason?: string;
}
interface UserMark extends Mark {
  version: number;
  tokenValidAfter: number;
}
interface BanMark extends Mark {
  until: number | null;
}

export interface MemoryStoreOptions {
  /** store time; by default the latest time seen from callers */
  now?: () => number;
  /** where each applied revocation is published; none: nowhere (a store used without a feed) */
  feed?: Pick<MemoryFeed, "publish">;
}

/** How long a new guest account may exist before its first session. */
const GUEST_GRACE_MS = 60_000;

export class MemoryStore implements Store {
  readonly kind = "memory" as const;

  private readonly users = new Map<string, UserRecord>();
  /** lower-cased username -> user id */
  private readonly usernames = new Map<string, string>();
  private readonly sessions = new Map<string, StoredSession>();
  /** live sessions only */
  private readonly userSessions = new Map<string, Set<string>>();

  private readonly jtiMarks = new Map<string, Mark>();
  private readonly sessionMarks = new Map<string, Mark>();
  private readonly userMarks = new Map<string, UserMark>();
  private readonly banMarks = new Map<string, BanMark>();
  private globalMark: (Mark & { tokenValidAfter: number }) | null = null;
  /** sessions created before the last revoke-all (a lower generation) may not refresh */
  private refreshGeneration = 0;

  private seq = 0;
  /** the memory store never loses its data while the process lives */
  private readonly epoch = randomBytes(8).toString("hex");
  /** oldest first; listAudit reverses */
  private readonly audit: AuditEntry[] = [];

  private latestNow = 0;
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly opts: MemoryStoreOptions = {}) {
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  // ---- users ----

  async createUser(user: UserRecord): Promise<void> {
    this.observe(user.createdAt);
    const key = user.username.toLowerCase();
    if (this.usernames.has(key)) throw new GatehouseError(ErrorCode.USERNAME_TAKEN);
    this.usernames.set(key, user.id);
    this.users.set(user.id, clone(user));
  }

  async getUser(id: string): Promise<UserRecord | null> {
    const u = this.users.get(id);
    return u ? clone(u) : null;
  }

  async getUserByUsername(username: string): Promise<UserRecord | null> {
    const id = this.usernames.get(username.toLowerCase());
    return id === undefined ? null : this.getUser(id);
  }

  async searchUsers(prefix: string, limit: number): Promise<UserRecord[]> {
    const p = prefix.toLowerCase();
    // A scan: the embedded store serves one node of a small deployment.
    const names = [...this.usernames.keys()].filter((n) => n.startsWith(p)).sort();
    const out: UserRecord[] = [];
    for (const name of names) {
      const u = this.users.get(this.usernames.get(name)!);
      if (!u || u.guest) continue;
      out.push(clone(u));
      if (out.length >= limit) break;
    }
    return out;
  }

  async upsertAdmin(user: UserRecord): Promise<UserRecord> {
    this.observe(user.createdAt);
    const id = this.usernames.get(user.username.toLowerCase());
    const existing = id === undefined ? undefined : this.users.get(id);
    if (existing) {
      // Never promote a player who happens to hold the configured name.
      if (existing.role !== "admin") throw new GatehouseError(ErrorCode.USERNAME_TAKEN, "That username belongs to a player account.");
      existing.passwordHash = user.passwordHash;
      existing.role = "admin";
      return clone(existing);
    }
    const created: UserRecord = { ...clone(user), role: "admin" };
    this.usernames.set(user.username.toLowerCase(), created.id);
    this.users.set(created.id, created);
    return clone(created);
  }

  // ---- sessions and refresh tokens ----

  async createSession(ns: NewSession, expectVersion: number): Promise<CreateSessionResult> {
    this.observe(ns.now);
    const user = this.users.get(ns.userId);
    if (!user || user.version !== expectVersion) return { status: "stale" };
    const rec: SessionRecord = { id: ns.id, userId: ns.userId, device: ns.device, createdAt: ns.now, lastSeenAt: ns.now, expiresAt: ns.expiresAt };
    this.sessions.set(ns.id, { rec, state: "live", gen: this.refreshGeneration, cur: ns.refreshHash, prev: null, trail: [] });
    addTo(this.userSessions, ns.userId, ns.id);
    return { status: "ok", session: clone(rec), basis: this.basis(user, ns.now) };
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    const s = this.liveSession(sessionId, this.time());
    return s ? clone(s.rec) : null;
  }

  async listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    this.observe(now);
    const out: SessionRecord[] = [];
    for (const sid of this.userSessions.get(userId) ?? []) {
      const s = this.liveSession(sid, now);
      if (s) out.push(clone(s.rec));
    }
    return out.sort(newestFirst);
  }

  async rotateRefresh(sessionId: string, r: Rotation): Promise<RotateResult> {
    const now = r.now;
    this.observe(now);
    const s = this.sessions.get(sessionId);
    const h = r.presentedHash;
    const isCur = s !== undefined && sameHash(h, s.cur);
    const isPrev = s?.prev ? sameHash(h, s.prev.hash) : false;
    // Only an authentic token learns anything about the session (its id alone is no secret).
    if (!s || !(isCur || isPrev || s.trail.some((t) => sameHash(h, t)))) return { status: "invalid" };
    const userId = s.rec.userId;
    const user = this.users.get(userId);
    if (user?.ban && (user.ban.until === null || user.ban.until > now)) return { status: "banned", userId };
    if (!user || s.state === "revoked" || s.rec.expiresAt <= now || s.gen < this.refreshGeneration) return { status: "invalid", userId };
    if (!isCur) {
      if (isPrev && r.graceMs > 0 && now - s.prev!.at <= r.graceMs) {
        return { status: "grace", session: clone(s.rec), basis: this.basis(user, now), nextSealed: s.prev!.nextSealed };
      }
      return { status: "reused", sessionId, userId };
    }
    if (s.prev) s.trail = [s.prev.hash, ...s.trail].slice(0, REFRESH_TRAIL - 1);
    s.prev = { hash: s.cur, at: now, nextSealed: r.nextSealed };
    s.cur = r.nextHash;
    s.rec.lastSeenAt = now;
    // The chain slides: the session lives as long as its newest refresh token.
    s.rec.expiresAt = Math.max(s.rec.expiresAt, r.expiresAt);
    return { status: "ok", session: clone(s.rec), basis: this.basis(user, now) };
  }

  // ---- revocation ----

  async applyRevocation(change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): Promise<RevocationEvent> {
    const { now, markTtlMs, nodeId } = ctx;
    this.observe(now);
    const expiresAt = markExpiry(now, markTtlMs);
    const event: RevocationEvent = { seq: 0, kind: change.kind, reason: change.reason, at: now, expiresAt, nodeId };
    if ((change.kind === "session" || change.kind === "user") && change.note) event.note = change.note;

    switch (change.kind) {
      case "session": {
        this.killSession(change.sessionId);
        this.sessionMarks.set(change.sessionId, laterMark(this.sessionMarks.get(change.sessionId), { expiresAt, reason: change.reason }));
        Object.assign(event, { userId: change.userId, sessionId: change.sessionId });
        if (change.jti) {
          const jtiExp = change.jtiExp ?? expiresAt;
          if (jtiExp > now) this.jtiMarks.set(change.jti, laterMark(this.jtiMarks.get(change.jti), { expiresAt: jtiExp, reason: change.reason }));
          event.jti = change.jti;
        }
        break;
      }
      case "user": {
        const tokenValidAfter = nextSecond(now);
        const user = this.users.get(change.userId);
        // Checked before anything changes: a concurrent password change won, nothing is applied.
        if (change.ifPasswordHash !== undefined && user?.passwordHash !== change.ifPasswordHash) {
          throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
        }
        // An unknown user gets marks (harmless) but no half-made record.
        let version = 0;
        if (user) {
          version = ++user.version;
          if (change.passwordHash !== undefined) user.passwordHash = change.passwordHash;
          user.tokenValidAfter = tokenValidAfter;
          if (change.ban) user.ban = { ...change.ban };
        }
        for (const sid of [...(this.userSessions.get(change.userId) ?? [])]) this.killSession(sid);
        this.userSessions.delete(change.userId);
        this.userMarks.set(change.userId, { version, tokenValidAfter, expiresAt, reason: change.reason });
        if (change.ban) {
          const banExpiresAt = banMarkExpiry(change.ban.until, expiresAt);
          if (banExpiresAt > now) this.banMarks.set(change.userId, { until: change.ban.until, expiresAt: banExpiresAt });
          event.ban = { ...change.ban };
        }
        Object.assign(event, { userId: change.userId, tokenValidAfter, version });
        break;
      }
      case "unban": {
        const user = this.users.get(change.userId);
        if (user) user.ban = null;
        this.banMarks.delete(change.userId);
        event.userId = change.userId;
        break;
      }
      case "global": {
        const tokenValidAfter = globalCutoff(now, this.globalMark?.tokenValidAfter ?? 0);
        this.globalMark = { tokenValidAfter, expiresAt, reason: change.reason };
        this.refreshGeneration++;
        event.tokenValidAfter = tokenValidAfter;
        break;
      }
    }
    event.seq = ++this.seq;

    // Durable part done: publish (the feed delivers to every subscriber, our own node included).
    this.opts.feed?.publish(event);
    return event;
  }

  async loadMarks(now: number): Promise<MarkSnapshot> {
    this.observe(now);
    this.purgeMarks(now);
    const g = this.globalMark;
    return {
      epoch: this.epoch,
      seq: this.seq,
      jtis: [...this.jtiMarks].map(([jti, m]) => ({ jti, expiresAt: m.expiresAt, reason: m.reason })),
      sessions: [...this.sessionMarks].map(([sessionId, m]) => ({ sessionId, expiresAt: m.expiresAt, reason: m.reason })),
      users: [...this.userMarks].map(([userId, m]) => ({
        userId,
        version: m.version,
        tokenValidAfter: m.tokenValidAfter,
        expiresAt: m.expiresAt,
        reason: m.reason,
      })),
      bans: [...this.banMarks].map(([userId, m]) => ({ userId, until: m.until, expiresAt: m.expiresAt })),
      global: g ? { tokenValidAfter: g.tokenValidAfter, expiresAt: g.expiresAt } : null,
    };
  }

  async loadMarksFor(keys: { userId: string; sessionId: string; jti: string }, now: number): Promise<Marks> {
    const all = await this.loadMarks(now);
    return {
      jtis: all.jtis.filter((m) => m.jti === keys.jti),
      sessions: all.sessions.filter((m) => m.sessionId === keys.sessionId),
      users: all.users.filter((m) => m.userId === keys.userId),
      bans: all.bans.filter((m) => m.userId === keys.userId),
      global: all.global,
    };
  }

  // ---- audit ----

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.audit.push(clone(entry));
    if (this.audit.length > AUDIT_MAX) this.audit.splice(0, this.audit.length - AUDIT_MAX);
  }

  async listAudit(limit: number): Promise<AuditEntry[]> {
    if (limit <= 0) return [];
    return this.audit.slice(-limit).reverse().map(clone);
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
  }

  // ---- housekeeping ----

  /** Counts of stored state, for tests that prove memory stays bounded. */
  stats(): { users: number; sessions: number; refresh: number; marks: number } {
    const marks = this.jtiMarks.size + this.sessionMarks.size + this.userMarks.size + this.banMarks.size + (this.globalMark ? 1 : 0);
    let refresh = 0;
    for (const s of this.sessions.values()) refresh += 1 + (s.prev ? 1 : 0) + s.trail.length;
    return { users: this.users.size, sessions: this.sessions.size, refresh, marks };
  }

  /** Drops everything expired at `now` (default: store time). Runs on the timer; public for tests. */
  sweep(now?: number): void {
    if (now !== undefined) this.observe(now);
    const t = now ?? this.time();
    this.purgeMarks(t);
    for (const [sid, s] of this.sessions) if (s.rec.expiresAt <= t) this.dropSession(sid);
    // A guest is reached only through its sessions: with the last one gone, so is the account
    // (a minute's grace covers one being created right now, before its first session).
    for (const [id, u] of this.users) {
      if (u.guest && !this.userSessions.get(id)?.size && u.createdAt + GUEST_GRACE_MS <= t) {
        this.users.delete(id);
        this.usernames.delete(u.username.toLowerCase());
      }
    }
  }

  private time(): number {
    return this.opts.now ? this.opts.now() : this.latestNow;
  }

  private observe(t: number): void {
    if (t > this.latestNow) this.latestNow = t;
  }

  private purgeMarks(now: number): void {
    for (const map of [this.jtiMarks, this.sessionMarks, this.userMarks, this.banMarks] as Map<string, Mark>[]) {
      for (const [k, m] of map) if (m.expiresAt <= now) map.delete(k);
    }
    if (this.globalMark && this.globalMark.expiresAt <= now) this.globalMark = null;
  }

  /** The session if live and unexpired at `now`; an expired one is dropped on the way. */
  private liveSession(sessionId: string, now: number): StoredSession | undefined {
    const s = this.sessions.get(sessionId);
    if (s && s.rec.expiresAt <= now) {
      this.dropSession(sessionId);
      return undefined;
    }
    return s?.state === "live" ? s : undefined;
  }

  /** What a token issued now is signed with (read with the step that issues it). */
  private basis(user: UserRecord, now: number): TokenBasis {
    const g = this.globalMark;
    const globalCutoff = g && g.expiresAt > now ? g.tokenValidAfter : 0;
    return { username: user.username, role: user.role, version: user.version, notBeforeIat: Math.max(user.tokenValidAfter, globalCutoff), at: now };
  }

  /** Revoked: a tombstone (authentic tokens of it are "invalid" with their user) until its own expiry. */
  private killSession(sessionId: string): void {
    const s = this.sessions.get(sessionId);
    if (!s) return;
    s.state = "revoked";
    s.prev = null;
    s.trail = [];
    removeFrom(this.userSessions, s.rec.userId, sessionId);
  }

  private dropSession(sessionId: string): void {
    const s = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    if (s) removeFrom(this.userSessions, s.rec.userId, sessionId);
  }
}

/** Constant-time comparison of two SHA-256 hex digests. */
function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function laterMark(prev: Mark | undefined, next: Mark): Mark {
  return prev && prev.expiresAt > next.expiresAt ? prev : next;
}

function newestFirst(a: SessionRecord, b: SessionRecord): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

