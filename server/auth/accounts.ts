/**
 * Accounts and sessions: register, login, guest, refresh rotation, password
 * change. Transport-free (HTTP routes call it), so rules live in one place.
 */
import type { TokenPair, PublicUser } from "../../shared/claims";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { GUEST_PREFIX } from "../../shared/protocol";
import type { Clock } from "../clock";
import type { Revocations } from "../revocation/revocations";
import type { Ban, SessionRecord, Store, TokenBasis, UserRecord } from "../store/store";
import { dummyPasswordHash, hashPassword, verifyPassword } from "./passwords";
import { openSuccessor, sealSuccessor } from "./refresh-seal";
import { hashRefreshToken, newId, newRefreshToken, newSessionId, sessionIdOfRefreshToken, type TokenService } from "./tokens";

export interface AccountsDeps {
  store: Store;
  tokens: TokenService;
  revocations: Revocations;
  clock: Clock;
  refreshTtlMs: number;
  /** REFRESH_REUSE_GRACE in ms; 0 = off */
  refreshReuseGraceMs: number;
  /** SESSIONS_PER_USER: 0 = unlimited (default), 1 = a login replaces the user's other sessions */
  sessionsPerUser?: number;
}

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, username: u.username, role: u.role };
}

export function isBanned(u: UserRecord, now: number): boolean {
  return u.ban !== null && (u.ban.until === null || u.ban.until > now);
}

/** A ban as the wire shows it: end as ISO time (null = until unbanned), the admin's reason or null. */
export function banView(ban: Ban | null): { until: string | null; reason: string | null } {
  return { until: ban?.until != null ? new Date(ban.until).toISOString() : null, reason: ban?.reason ?? null };
}

/** USER_BANNED carrying the ban's end and the admin's reason (contract section 3). */
export function bannedError(ban: Ban | null): GatehouseError {
  return new GatehouseError(ErrorCode.USER_BANNED, undefined, banView(ban));
}

/** Newer first: creation time, then id, so every node ranks a user's sessions the same way. */
const newerFirst = (a: SessionRecord, b: SessionRecord): number => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

export class Accounts {
  constructor(private readonly d: AccountsDeps) {}

  async register(username: string, password: string, device: string): Promise<TokenPair> {
    const user = this.newUser(username, await hashPassword(password), false);
    await this.d.store.createUser(user);
    return this.startSessionOrFail(user, device);
  }

  async guest(device: string): Promise<TokenPair> {
    // 48 random bits keep guest names unique in practice; a clash just retries.
    for (let attempt = 0; ; attempt++) {
      const user = this.newUser(`${GUEST_PREFIX}${newId().slice(0, 8).replace(/[^A-Za-z0-9]/g, "x")}`, null, true);
      try {
        await this.d.store.createUser(user);
        return await this.startSessionOrFail(user, device);
      } catch (err) {
        if (!(err instanceof GatehouseError && err.code === ErrorCode.USERNAME_TAKEN) || attempt >= 3) throw err;
      }
    }
  }

  /** Checks credentials at constant cost (unknown users compare against a dummy hash). */
  async verifyCredentials(username: string, password: string): Promise<UserRecord | null> {
    const user = await this.d.store.getUserByUsername(username);
    const stored = user?.passwordHash ?? (await dummyPasswordHash());
    const ok = await verifyPassword(password, stored);
    return user && user.passwordHash && ok ? user : null;
  }

  /**
   * A session for a user whose password was just verified. The store creates it only if the
   * user's version is still the one read with that password: a password change, logout-all,
   * kick or ban that landed meanwhile wins, and this login gets no session at all (contract 5).
   */
  async login(user: UserRecord, device: string): Promise<TokenPair> {
    if (isBanned(user, this.d.clock.now())) throw bannedError(user.ban);
    const pair = await this.startSessionOrFail(user, device);
    if (this.d.sessionsPerUser === 1) await this.replaceOtherSessions(user.id, pair.sessionId);
    return pair;
  }

  /**
   * SESSIONS_PER_USER=1, once the new session exists. Sessions are ranked by (createdAt, id);
   * the newest one wins: this login ends every older session, or, if a newer one already exists
   * (two logins at once), its own. Of two sessions, the one created second always sees the
   * other when it lists, so every pair loses one member whatever the interleaving: at most one
   * session survives, and it is the newest (which nobody revokes).
   */
  private async replaceOtherSessions(userId: string, ownId: string): Promise<void> {
    const sessions = (await this.d.store.listSessions(userId, this.d.clock.now())).sort(newerFirst);
    const own = sessions.findIndex((s) => s.id === ownId);
    const revoke = (sessionId: string) => this.d.revocations.revoke({ kind: "session", userId, sessionId, reason: "session_replaced" });
    // Gone already: a newer login of this user replaced it.
    if (own < 0) throw new GatehouseError(ErrorCode.SESSION_REVOKED);
    if (own > 0) {
      // A newer login of this user won the race: this session is the one replaced.
      await revoke(ownId);
      throw new GatehouseError(ErrorCode.SESSION_REVOKED);
    }
    for (const s of sessions.slice(1)) await revoke(s.id);
  }

  /**
   * Rotation: the old refresh token dies; presenting it again revokes the whole session, except
   * a retry within REFRESH_REUSE_GRACE, which gets the same live successor again. The store reads
   * version, cutoffs and ban in the same atomic step, and the access token is signed with those.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const sessionId = sessionIdOfRefreshToken(refreshToken);
    if (!sessionId) throw new GatehouseError(ErrorCode.REFRESH_INVALID);
    const now = this.d.clock.now();
    const next = newRefreshToken(sessionId);
    const result = await this.d.store.rotateRefresh(sessionId, {
      presentedHash: hashRefreshToken(refreshToken),
      nextHash: next.hash,
      nextSealed: sealSuccessor(next.token, refreshToken),
      now,
      expiresAt: now + this.d.refreshTtlMs,
      graceMs: this.d.refreshReuseGraceMs,
    });
    switch (result.status) {
      case "ok":
        return this.pair(result.session, result.basis, next.token);
      case "grace": {
        const again = openSuccessor(result.nextSealed, refreshToken);
        if (again === null) throw new GatehouseError(ErrorCode.REFRESH_INVALID);
        return this.pair(result.session, result.basis, again);
      }
      case "reused":
        await this.d.revocations.revoke({ kind: "session", userId: result.userId, sessionId: result.sessionId, reason: "refresh_reused" });
        throw new GatehouseError(ErrorCode.REFRESH_REUSED);
      case "banned":
        throw bannedError((await this.d.store.getUser(result.userId))?.ban ?? null);
      case "invalid":
        throw new GatehouseError(ErrorCode.REFRESH_INVALID);
    }
  }

  /**
   * Every other token of the user dies (reason password_changed); the caller gets a fresh session.
   * The new hash is written by the revocation itself, and only over the hash verified here: a
   * login racing this change either read the new hash or finds its version moved.
   */
  async changePassword(userId: string, sessionId: string, oldPassword: string, newPassword: string): Promise<TokenPair> {
    const user = await this.d.store.getUser(userId);
    const ok = user?.passwordHash ? await verifyPassword(oldPassword, user.passwordHash) : false;
    if (!user?.passwordHash || !ok) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
    const device = (await this.d.store.getSession(sessionId))?.device ?? "unknown";
    const event = await this.d.revocations.revoke({
      kind: "user",
      userId,
      reason: "password_changed",
      passwordHash: await hashPassword(newPassword),
      ifPasswordHash: user.passwordHash,
    });
    return this.startSessionOrFail({ ...user, version: event.version ?? 0 }, device);
  }

  /**
   * The admin account from ADMIN_USERNAME / ADMIN_PASSWORD. Every node runs this at every start
   * (each with its own salt, hence `passwordHash` made once by the caller): only a real password
   * change acts, and it is a password change like any other, so every earlier admin token dies
   * (audited); it also lifts a ban on the admin account. A player who holds the name is never promoted.
   */
  async ensureAdmin(username: string, password: string, passwordHash: string): Promise<"ready" | "created" | "reset"> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.d.store.getUserByUsername(username);
      if (existing && existing.role !== "admin") throw adminNameTaken(username);
      if (!existing) {
        await this.d.store.upsertAdmin({ ...this.newUser(username, passwordHash, false), role: "admin" }).catch((err: unknown) => {
          throw err instanceof GatehouseError && err.code === ErrorCode.USERNAME_TAKEN ? adminNameTaken(username) : err;
        });
        return "created";
      }
      const passwordOk = existing.passwordHash !== null && (await verifyPassword(password, existing.passwordHash));
      if (passwordOk && existing.ban === null) return "ready";
      try {
        if (!passwordOk) {
          await this.d.revocations.revoke({
            kind: "user",
            userId: existing.id,
            reason: "password_changed",
            passwordHash,
            ...(existing.passwordHash !== null ? { ifPasswordHash: existing.passwordHash } : {}),
          });
        }
      } catch (err) {
        // Another node reset it at the same moment: look again (its hash now verifies).
        if (err instanceof GatehouseError && err.code === ErrorCode.CREDENTIALS_INVALID && attempt < 3) continue;
        throw err;
      }
      if (existing.ban !== null) await this.d.revocations.revoke({ kind: "unban", userId: existing.id, reason: "unbanned" });
      const at = new Date(this.d.clock.now()).toISOString();
      await this.d.store.appendAudit({
        id: newId(),
        at,
        actorId: existing.id,
        actorName: "(node start)",
        action: "admin_password_reset",
        target: existing.id,
        detail: { username: existing.username, passwordChanged: !passwordOk, unbanned: existing.ban !== null },
      });
      return "reset";
    }
  }

  private newUser(username: string, passwordHash: string | null, guest: boolean): UserRecord {
    return {
      id: newId(),
      username,
      role: "player",
      passwordHash,
      guest,
      createdAt: this.d.clock.now(),
      version: 0,
      tokenValidAfter: 0,
      ban: null,
    };
  }

  /** A new session, if the user's version is still `user.version`; else why not, as an error. */
  private async startSessionOrFail(user: UserRecord, device: string): Promise<TokenPair> {
    const now = this.d.clock.now();
    const sessionId = newSessionId(user.id);
    const refresh = newRefreshToken(sessionId);
    const created = await this.d.store.createSession(
      { id: sessionId, userId: user.id, device, refreshHash: refresh.hash, now, expiresAt: now + this.d.refreshTtlMs },
      user.version,
    );
    if (created.status === "ok") return this.pair(created.session, created.basis, refresh.token);
    // A revocation of this user landed between the password check and now.
    const fresh = await this.d.store.getUser(user.id);
    if (!fresh || fresh.passwordHash !== user.passwordHash) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
    if (isBanned(fresh, this.d.clock.now())) throw bannedError(fresh.ban);
    throw new GatehouseError(ErrorCode.SESSION_REVOKED);
  }

  /** Signed with what the store read atomically with the session step (see TokenBasis). */
  private pair(session: SessionRecord, basis: TokenBasis, refreshToken: string): TokenPair {
    const { token } = this.d.tokens.issue({
      userId: session.userId,
      sessionId: session.id,
      role: basis.role,
      version: basis.version,
      notBeforeIat: basis.notBeforeIat,
      issuedAt: basis.at,
    });
    return {
      accessToken: token,
      refreshToken,
      expiresIn: this.d.tokens.accessTtlSec,
      sessionId: session.id,
      user: { id: session.userId, username: basis.username, role: basis.role },
    };
  }
}

function adminNameTaken(username: string): Error {
  return new Error(`ADMIN_USERNAME "${username}" belongs to a player account; choose another name`);
}
