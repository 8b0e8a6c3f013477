/**
 * The Store: users, sessions, refresh tokens, revocation marks (each revocation made
 * durable, numbered and published in one atomic step), and the audit log. Two backends:
 * MemoryStore (embedded mode) and RedisStore (cluster mode), chosen once in gatehouse.ts.
 * Both pass the same contract suite (test/integration/store.contract.test.ts).
 *
 * The receiving half of what applyRevocation publishes (subscriptions, acknowledgements,
 * the seq probe) is the RevocationFeed beside it (feed.ts), built with the store.
 *
 * Times are epoch milliseconds everywhere, taken from the `now` the caller passes
 * (the injected clock), never from Date.now() inside a backend, so tests can
 * move time. Redis keys get real TTLs computed from those same times.
 */
import type { Role } from "../../shared/claims";
import type { RevocationReason, AuditEntry } from "../../shared/protocol";

export interface Ban {
  /** epoch ms; null = permanent */
  until: number | null;
  reason?: string;
}

export interface UserRecord {
  id: string;
  username: string;
  role: Role;
  /** scrypt hash string (see auth/passwords.ts); null for guests, who cannot log in by password */
  passwordHash: string | null;
  guest: boolean;
  createdAt: number;
  /** token version; bumped by every user-wide revocation */
  version: number;
  /** tokens with iat (seconds) below this are dead; 0 = none */
  tokenValidAfter: number;
  ban: Ban | null;
}

export interface SessionRecord {
  id: string;
  userId: string;
  device: string;
  createdAt: number;
  lastSeenAt: number;
  /** when the session's refresh token chain expires (the session record expires then too) */
  expiresAt: number;
}

/**
 * What an access token is signed with, read in the same atomic step that
 * creates or rotates the session (so a revocation can never land between the
 * read and the signature without covering the token: contract section 5).
 */
export interface TokenBasis {
  username: string;
  role: Role;
  /** the user's token version */
  version: number;
  /** seconds: max(the user's token_valid_after, the global cutoff); iat must not be below it */
  notBeforeIat: number;
  /** epoch ms, the store's time of the read (Redis TIME): the token's iat and exp count from it */
  at: number;
}

export interface NewSession {
  id: string;
  userId: string;
  device: string;
  /** SHA-256 hex of the session's first refresh token */
  refreshHash: string;
  now: number;
  /** when the session (and its refresh token) expires, epoch ms */
  expiresAt: number;
}

export type CreateSessionResult =
  | { status: "ok"; session: SessionRecord; basis: TokenBasis }
  /** the user is gone, or its version is no longer the one the caller saw (a revocation won the race) */
  | { status: "stale" };

/** Rotated refresh hashes kept per session for reuse detection (older ones answer "invalid"). */
export const REFRESH_TRAIL = 8;

export interface Rotation {
  /** SHA-256 hex of the presented refresh token */
  presentedHash: string;
  /** SHA-256 hex of its successor */
  nextHash: string;
  /** the successor sealed with a key only the presented token yields (see auth/refresh-seal.ts) */
  nextSealed: string;
  now: number;
  /** the successor's expiry, epoch ms (the session slides to it) */
  expiresAt: number;
  /** REFRESH_REUSE_GRACE in ms; 0 = off */
  graceMs: number;
}

export type RotateResult =
  | { status: "ok"; session: SessionRecord; basis: TokenBasis }
  /**
   * the presented token is the one rotated last, within the grace: its live successor, sealed
   * (the caller opens it with the presented token), is answered again, with a fresh access token
   */
  | { status: "grace"; session: SessionRecord; basis: TokenBasis; nextSealed: string }
  /** the session's user is banned (checked atomically with the rotation): nothing rotated */
  | { status: "banned"; userId: string }
  /**
   * unknown token, expired or revoked session; `userId` only when the token is
   * authentic (its hash is one the session knows)
   */
  | { status: "invalid"; userId?: string }
  /** an older token of the session's trail: the caller must revoke the session */
  | { status: "reused"; sessionId: string; userId: string };

/**
 * A revocation as requested by a route. `applyRevocation` makes it durable
 * (marks with TTLs, session/refresh state), assigns it the next `seq`, and
 * publishes the resulting RevocationEvent, all in one atomic step.
 */
export type RevocationChange =
  /** one session: its refresh tokens die, `sid` mark until now+markTtl; optionally one jti blacklisted until jtiExp */
  | {
      kind: "session";
      userId: string;
      sessionId: string;
      jti?: string;
      /** epoch ms until which that token is accepted anywhere: its exp plus the clock tolerance */
      jtiExp?: number;
      reason: RevocationReason;
      note?: string;
    }
  /**
   * every session of a user: version+1, tokenValidAfter = next whole second,
   * all sessions and refresh tokens deleted, user mark until now+markTtl;
   * with `ban`, the user record's ban is set and a ban mark kept until
   * min(ban.until, now+markTtl). With `passwordHash`, the new hash is set in the same step (a
   * login that verified the old password then cannot create a session: its version moved), and
   * only if the stored hash is still `ifPasswordHash` (else CREDENTIALS_INVALID, nothing applied).
   */
  | { kind: "user"; userId: string; ban?: Ban; passwordHash?: string; ifPasswordHash?: string; reason: RevocationReason; note?: string }
  /** clears the user's ban (record and mark); reason is informational */
  | { kind: "unban"; userId: string; reason: "unbanned" }
  /** global tokenValidAfter = next whole second; every session that exists now can no longer refresh */
  | { kind: "global"; reason: RevocationReason };

/** What travels on the feed (small, typed; see contract section 5). */
export interface RevocationEvent {
  seq: number;
  kind: "session" | "user" | "unban" | "global";
  userId?: string;
  sessionId?: string;
  jti?: string;
  /** seconds; for user and global */
  tokenValidAfter?: number;
  /** the user's new version, for user */
  version?: number;
  ban?: Ban;
  reason: RevocationReason | "unbanned";
  /** an admin's free-text reason, passed on to the sockets this event drops (not kept in marks) */
  note?: string;
  /** epoch ms when applied */
  at: number;
  /** epoch ms when the marks this event created expire */
  expiresAt: number;
  /** the node that issued it (it has applied it locally already) */
  nodeId: string;
}

/**
 * Live revocation marks. `reason` is the revocation reason that created the
 * mark (so a node that missed the event can tell its sockets why).
 */
export interface Marks {
  jtis: { jti: string; expiresAt: number; reason?: string }[];
  sessions: { sessionId: string; expiresAt: number; reason?: string }[];
  users: { userId: string; version: number; tokenValidAfter: number; expiresAt: number; reason?: string }[];
  bans: { userId: string; until: number | null; expiresAt: number }[];
  global: { tokenValidAfter: number; expiresAt: number } | null;
}

/** Every live mark, as a node loads it at start or after losing the feed. */
export interface MarkSnapshot extends Marks {
  /** names the store's dataset: it changes only if the store lost its data (Redis restarted empty, flushed) */
  epoch: string;
  /** highest seq whose marks are included */
  seq: number;
}

export interface Store {
  /** "memory" or "redis", for logs and /readyz */
  readonly kind: "memory" | "redis";

  // ---- users ----
  /** throws GatehouseError(USERNAME_TAKEN) if the username (case-insensitive) exists */
  createUser(user: UserRecord): Promise<void>;
  getUser(id: string): Promise<UserRecord | null>;
  /** case-insensitive */
  getUserByUsername(username: string): Promise<UserRecord | null>;
  /**
   * creates the admin account or resets its password; idempotent and safe from several nodes at
   * once; USERNAME_TAKEN if the name belongs to a non-admin (never promotes a player)
   */
  upsertAdmin(user: UserRecord): Promise<UserRecord>;
  /**
   * registered accounts (players and admins; never guests, whose accounts expire with their
   * sessions) whose username starts with `prefix`, case-insensitive; ordered by lower-cased
   * username, at most `limit`
   */
  searchUsers(prefix: string, limit: number): Promise<UserRecord[]>;

  // ---- sessions and refresh tokens ----
  /**
   * creates the session and its first refresh token, only if the user's version is still
   * `expectVersion` (the one seen when the password was verified), and reads the token basis,
   * all in one atomic step
   */
  createSession(session: NewSession, expectVersion: number): Promise<CreateSessionResult>;
  /** null when missing, revoked or expired */
  getSession(sessionId: string): Promise<SessionRecord | null>;
  /** the user's live sessions, newest first */
  listSessions(userId: string, now: number): Promise<SessionRecord[]>;
  /**
   * atomically: checks the presented token against the session's live one, its last rotated one
   * (grace) and a bounded trail of older ones (reuse); checks the ban and the global refresh
   * cutoff; rotates; reads the token basis. Only the last REFRESH_TRAIL rotated hashes of a
   * session are kept: an older one is answered "invalid", never stored forever.
   */
  rotateRefresh(sessionId: string, rotation: Rotation): Promise<RotateResult>;

  // ---- revocation ----
  /**
   * durable + seq + publish (to the store's RevocationFeed) in one atomic step; `markTtlMs` is how
   * long marks must live (the longest access-token lifetime they cover, plus clock tolerance).
   */
  applyRevocation(change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): Promise<RevocationEvent>;
  /** every live mark (expiresAt > now) and the seq they reflect */
  loadMarks(now: number): Promise<MarkSnapshot>;
  /** the live marks that could cover one token: its jti, session, user, ban, and the global one */
  loadMarksFor(keys: { userId: string; sessionId: string; jti: string }, now: number): Promise<Marks>;

  // ---- audit ----
  appendAudit(entry: AuditEntry): Promise<void>;
  /** newest first */
  listAudit(limit: number): Promise<AuditEntry[]>;

  /** true when the backend answers (for /readyz) */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
