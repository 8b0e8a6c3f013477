/**
 * Accounts and sessions: register, login, guest, refresh rotation, password
 * change. Transport-free (HTTP routes call it), so rules live in one place.
 */
import type { TokenPair, PublicUser } from "../../shared/claims";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { GUEST_PREFIX } from "../../shared/protocol";
import type { Clock } from "../clock";
import type { RevocationCache } from "../revocation/cache";
import type { Revocations } from "../revocation/revocations";
import type { Store, UserRecord } from "../store/store";
import { dummyPasswordHash, hashPassword, verifyPassword } from "./passwords";
import { hashRefreshToken, newId, newRefreshToken, type TokenService } from "./tokens";

export interface AccountsDeps {
  store: Store;
  tokens: TokenService;
  cache: RevocationCache;
  revocations: Revocations;
  clock: Clock;
  refreshTtlMs: number;
}

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, username: u.username, role: u.role };
}

export function isBanned(u: UserRecord, now: number): boolean {
  return u.ban !== null && (u.ban.until === null || u.ban.until > now);
}

export class Accounts {
  constructor(private readonly d: AccountsDeps) {}

  async register(username: string, password: string, device: string): Promise<TokenPair> {
    const user = this.newUser(username, await hashPassword(password), false);
    await this.d.store.createUser(user);
    return this.startSession(user, device);
  }

  async guest(device: string): Promise<TokenPair> {
    // 48 random bits keep guest names unique in practice; a clash just retries.
    for (let attempt = 0; ; attempt++) {
      const user = this.newUser(`${GUEST_PREFIX}${newId().slice(0, 8).replace(/[^A-Za-z0-9]/g, "x")}`, null, true);
      try {
        await this.d.store.createUser(user);
        return await this.startSession(user, device);
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

  async login(user: UserRecord, device: string): Promise<TokenPair> {
    if (isBanned(user, this.d.clock.now())) throw new GatehouseError(ErrorCode.USER_BANNED);
    return this.startSession(user, device);
  }

  /** Rotation: the old refresh token dies; presenting it again revokes the whole session. */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const now = this.d.clock.now();
    const oldHash = hashRefreshToken(refreshToken);
    // The session id prefix is authentic only if the hash matches; the store checks that.
    const next = newRefreshToken(refreshToken.slice(0, refreshToken.indexOf(".")));
    const result = await this.d.store.rotateRefresh(oldHash, { hash: next.hash, createdAt: now, expiresAt: now + this.d.refreshTtlMs }, now);
    if (result.status === "reused") {
      await this.d.revocations.revoke({ kind: "session", userId: result.userId, sessionId: result.sessionId, reason: "refresh_reused" });
      throw new GatehouseError(ErrorCode.REFRESH_REUSED);
    }
    if (result.status === "invalid") {
      if (result.userId) {
        const owner = await this.d.store.getUser(result.userId);
        if (owner && isBanned(owner, now)) throw new GatehouseError(ErrorCode.USER_BANNED);
      }
      throw new GatehouseError(ErrorCode.REFRESH_INVALID);
    }
    const user = await this.d.store.getUser(result.session.userId);
    if (!user) throw new GatehouseError(ErrorCode.REFRESH_INVALID);
    if (isBanned(user, now)) throw new GatehouseError(ErrorCode.USER_BANNED);
    return this.pair(user, result.session.id, next.token);
  }

  /** Every other token of the user dies (reason password_changed); the caller gets a fresh session. */
  async changePassword(userId: string, sessionId: string, oldPassword: string, newPassword: string): Promise<TokenPair> {
    const user = await this.d.store.getUser(userId);
    const ok = user?.passwordHash ? await verifyPassword(oldPassword, user.passwordHash) : false;
    if (!user || !ok) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
    const device = (await this.d.store.getSession(sessionId))?.device ?? "unknown";
    await this.d.store.setPasswordHash(userId, await hashPassword(newPassword));
    await this.d.revocations.revoke({ kind: "user", userId, reason: "password_changed" });
    // Re-read: the revocation bumped version and token_valid_after.
    const fresh = await this.d.store.getUser(userId);
    if (!fresh) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
    return this.startSession(fresh, device);
  }

  /**
   * The admin account from ADMIN_USERNAME / ADMIN_PASSWORD. Every node runs this at every start
   * (each with its own salt, hence `passwordHash` made once by the caller): only a real password
   * change acts, and it is a password change like any other, so every earlier admin token dies
   * (audited). A player who holds the name is never promoted.
   */
  async ensureAdmin(username: string, password: string, passwordHash: string): Promise<"ready" | "created" | "reset"> {
    const existing = await this.d.store.getUserByUsername(username);
    if (existing?.role === "admin" && existing.passwordHash && (await verifyPassword(password, existing.passwordHash))) return "ready";
    const admin = await this.d.store.upsertAdmin({ ...this.newUser(username, passwordHash, false), role: "admin" }).catch((err: unknown) => {
      if (!(err instanceof GatehouseError && err.code === ErrorCode.USERNAME_TAKEN)) throw err;
      throw new Error(`ADMIN_USERNAME "${username}" belongs to a player account; choose another name`);
    });
    if (!existing) return "created";
    await this.d.revocations.revoke({ kind: "user", userId: admin.id, reason: "password_changed" });
    const at = new Date(this.d.clock.now()).toISOString();
    await this.d.store.appendAudit({ id: newId(), at, actorId: admin.id, actorName: "(node start)", action: "admin_password_reset", target: admin.id, detail: { username: admin.username } });
    return "reset";
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

  private async startSession(user: UserRecord, device: string): Promise<TokenPair> {
    const now = this.d.clock.now();
    const sessionId = newId();
    const refresh = newRefreshToken(sessionId);
    const expiresAt = now + this.d.refreshTtlMs;
    await this.d.store.createSession(
      { id: sessionId, userId: user.id, device, createdAt: now, lastSeenAt: now, expiresAt },
      { hash: refresh.hash, sessionId, userId: user.id, createdAt: now, expiresAt },
    );
    return this.pair(user, sessionId, refresh.token);
  }

  private pair(user: UserRecord, sessionId: string, refreshToken: string): TokenPair {
    const now = this.d.clock.now();
    const { token } = this.d.tokens.issue({
      userId: user.id,
      sessionId,
      role: user.role,
      version: user.version,
      // Never below a token_valid_after that applies, or the new token would be born dead.
      notBeforeIat: Math.max(user.tokenValidAfter, this.d.cache.globalValidAfter(now)),
    });
    return { accessToken: token, refreshToken, expiresIn: this.d.tokens.accessTtlSec, sessionId, user: publicUser(user) };
  }
}
