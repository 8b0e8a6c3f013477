/**
 * The near-cache: every live revocation mark, in memory, so a token check makes
 * no Redis round trip. Filled from a snapshot at start (and after a resync),
 * kept coherent by the feed, and purged as marks reach their expiry.
 * Marks are few: each one dies with the tokens it covers.
 */
import type { AccessClaims } from "../../shared/claims";
import { ErrorCode } from "../../shared/errors";
import { RevocationReason } from "../../shared/protocol";
import type { Ban, Marks, RevocationEvent } from "../store/store";
import { banMarkExpiry } from "./mark-rules";

type Reason = RevocationReason;

interface Mark {
  expiresAt: number;
  reason: Reason;
}
interface UserMark extends Mark {
  version: number;
  tokenValidAfter: number;
}
interface BanMark extends Mark {
  until: number | null;
}
interface GlobalMark extends Mark {
  tokenValidAfter: number;
}

/** Why a token is refused, and what to tell its live sockets. */
export interface Coverage {
  code: ErrorCode;
  reason: Reason;
}

const asReason = (r: string | undefined, fallback: Reason): Reason =>
  r !== undefined && (Object.values(RevocationReason) as string[]).includes(r) ? (r as Reason) : fallback;

export class RevocationCache {
  private readonly jtis = new Map<string, Mark>();
  private readonly sessions = new Map<string, Mark>();
  private readonly users = new Map<string, UserMark>();
  private readonly bans = new Map<string, BanMark>();
  private global: GlobalMark | null = null;

  apply(e: RevocationEvent): void {
    switch (e.kind) {
      case "session":
        if (e.sessionId) this.setMark(this.sessions, e.sessionId, e.expiresAt, asReason(e.reason, "session_revoked"));
        break;
      case "user": {
        if (!e.userId) break;
        const prev = this.users.get(e.userId);
        // Events can arrive twice (local apply + feed echo) or late: keep the newest.
        if (!prev || (e.version ?? 0) >= prev.version) {
          this.users.set(e.userId, {
            version: e.version ?? 0,
            tokenValidAfter: e.tokenValidAfter ?? 0,
            expiresAt: e.expiresAt,
            reason: asReason(e.reason, "kicked"),
          });
        }
        if (e.ban) this.setBan(e.userId, e.ban, e.expiresAt);
        break;
      }
      case "unban":
        if (e.userId) this.bans.delete(e.userId);
        break;
      case "global":
        if (!this.global || (e.tokenValidAfter ?? 0) >= this.global.tokenValidAfter) {
          this.global = { tokenValidAfter: e.tokenValidAfter ?? 0, expiresAt: e.expiresAt, reason: "revoked_all" };
        }
        break;
    }
    // A session event may also blacklist the one token that asked for it (logout).
    if (e.jti) this.setMark(this.jtis, e.jti, e.expiresAt, asReason(e.reason, "logout"));
  }

  /**
   * Loads a snapshot. `replace`: marks absent from the store are gone (expired
   * or unbanned). Otherwise merged into what we hold (used when the store lost
   * data: our marks are still the truth about tokens in the wild).
   */
  load(s: Marks, mode: "replace" | "merge" = "replace"): void {
    if (mode === "replace") {
      this.jtis.clear();
      this.sessions.clear();
      this.users.clear();
      this.bans.clear();
      this.global = null;
    }
    for (const m of s.jtis) this.setMark(this.jtis, m.jti, m.expiresAt, asReason(m.reason, "logout"));
    for (const m of s.sessions) this.setMark(this.sessions, m.sessionId, m.expiresAt, asReason(m.reason, "session_revoked"));
    for (const m of s.users) {
      const prev = this.users.get(m.userId);
      if (prev && prev.version > m.version) continue;
      this.users.set(m.userId, {
        version: m.version,
        tokenValidAfter: m.tokenValidAfter,
        expiresAt: m.expiresAt,
        reason: asReason(m.reason, "kicked"),
      });
    }
    for (const m of s.bans) this.bans.set(m.userId, { until: m.until, expiresAt: m.expiresAt, reason: "banned" });
    if (s.global && (!this.global || s.global.tokenValidAfter >= this.global.tokenValidAfter)) {
      this.global = { ...s.global, reason: "revoked_all" };
    }
  }

  /**
   * Does any live mark cover a token with these claims? Order follows the
   * contract's check order; the first hit decides code and reason.
   */
  coverage(c: Pick<AccessClaims, "sub" | "sid" | "jti" | "ver" | "iat">, now: number): Coverage | null {
    const g = this.global;
    if (g && g.expiresAt > now && c.iat < g.tokenValidAfter) return { code: ErrorCode.TOKEN_REVOKED, reason: g.reason };
    const u = this.users.get(c.sub);
    // `<` rather than `!==` on ver: a token newer than our mark means we missed an event, not that it is bad.
    if (u && u.expiresAt > now && (c.iat < u.tokenValidAfter || c.ver < u.version)) {
      return { code: ErrorCode.TOKEN_REVOKED, reason: u.reason };
    }
    const j = this.jtis.get(c.jti);
    if (j && j.expiresAt > now) return { code: ErrorCode.TOKEN_REVOKED, reason: j.reason };
    const s = this.sessions.get(c.sid);
    if (s && s.expiresAt > now) return { code: ErrorCode.SESSION_REVOKED, reason: s.reason };
    const b = this.bans.get(c.sub);
    if (b && b.expiresAt > now && (b.until === null || b.until > now)) return { code: ErrorCode.USER_BANNED, reason: "banned" };
    return null;
  }

  /** Global token_valid_after in seconds (0 when none is live): new tokens must not be issued below it. */
  globalValidAfter(now: number): number {
    return this.global && this.global.expiresAt > now ? this.global.tokenValidAfter : 0;
  }

  /** Drops expired marks; called on a timer so memory follows the live tokens. */
  purge(now: number): void {
    for (const map of [this.jtis, this.sessions, this.users] as Map<string, Mark>[]) {
      for (const [k, m] of map) if (m.expiresAt <= now) map.delete(k);
    }
    for (const [k, b] of this.bans) if (b.expiresAt <= now || (b.until !== null && b.until <= now)) this.bans.delete(k);
    if (this.global && this.global.expiresAt <= now) this.global = null;
  }

  size(): number {
    return this.jtis.size + this.sessions.size + this.users.size + this.bans.size + (this.global ? 1 : 0);
  }

  private setMark(map: Map<string, Mark>, key: string, expiresAt: number, reason: Reason): void {
    const prev = map.get(key);
    if (!prev || expiresAt > prev.expiresAt) map.set(key, { expiresAt, reason: prev?.reason ?? reason });
  }

  private setBan(userId: string, ban: Ban, markExpiresAt: number): void {
    this.bans.set(userId, { until: ban.until, expiresAt: banMarkExpiry(ban.until, markExpiresAt), reason: "banned" });
  }
}
