/**
 * Access-token issuing and cryptographic verification (HS256 pinned).
 * Revocation is NOT decided here: see check.ts, which calls verifySignedClaims first.
 */
import { createHash, createSecretKey, randomBytes, type KeyObject } from "node:crypto";
import jwt from "jsonwebtoken";
import { z } from "zod";
import type { AccessClaims, Role } from "../../shared/claims";
import { ErrorCode } from "../../shared/errors";
import { MAX_TOKEN_BYTES, SESSION_ID_PATTERN } from "../../shared/protocol";
import type { Clock } from "../clock";

/** Clock tolerance allowed on `exp` (contract section 2). */
export const CLOCK_TOLERANCE_SEC = 5;

const ClaimsSchema = z.object({
  sub: z.string().min(1).max(64),
  sid: z.string().min(1).max(64),
  jti: z.string().min(1).max(64),
  ver: z.number().int().min(0),
  iat: z.number().int().min(0),
  exp: z.number().int().min(0),
  iss: z.string(),
  aud: z.string(),
  role: z.enum(["player", "admin"]),
});

/** Header members we never honour: key selection must not be attacker-controlled. */
const HEADER_ALLOWED = new Set(["alg", "typ"]);
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export type VerifyResult = { ok: true; claims: AccessClaims } | { ok: false; code: ErrorCode };

export interface IssueInput {
  userId: string;
  sessionId: string;
  role: Role;
  version: number;
  /** seconds; tokens must not be issued below any token_valid_after that applies (see issue()) */
  notBeforeIat: number;
  /**
   * epoch ms the token counts from: the store's time of the read that `version` and
   * `notBeforeIat` come from (so a revocation after that read covers the token). Default: now.
   */
  issuedAt?: number;
}

export interface TokenOptions {
  issuer: string;
  audience: string;
  accessTtlMs: number;
  /** earlier signing keys (JWT_SECRET_PREVIOUS), accepted for verification only */
  previousSecrets?: readonly Buffer[];
  /**
   * Verified tokens remembered (the oldest dropped first), so a token seen again skips
   * the HMAC, the JSON parsing and the claims schema. 0 turns the cache off. @default 10000
   */
  verifiedCacheSize?: number;
}

/** @see TokenOptions.verifiedCacheSize */
export const DEFAULT_VERIFIED_CACHE_SIZE = 10_000;

export class TokenService {
  /** Built once: jsonwebtoken with a KeyObject is ~40x faster than with a string secret. */
  private readonly key: KeyObject;
  private readonly previousKeys: readonly KeyObject[];
  /**
   * Full token string -> its verified result (frozen). Only the signature and the claims'
   * shape are remembered: the key is the whole signed string, so an entry can only ever match
   * the bytes that were verified, and every use still goes through the revocation check.
   * Oldest entry out first (Map order): a hit costs one read and no write; a token in constant
   * use is verified again (one HMAC) only after `verifiedMax` newer tokens.
   */
  private readonly verified = new Map<string, VerifyResult & { ok: true }>();
  private readonly verifiedMax: number;

  constructor(
    secret: Buffer,
    private readonly opts: TokenOptions,
    private readonly clock: Clock,
  ) {
    this.key = createSecretKey(secret);
    this.previousKeys = (opts.previousSecrets ?? []).map((s) => createSecretKey(s));
    this.verifiedMax = opts.verifiedCacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE;
  }

  /** Verified tokens currently remembered (tests). */
  get verifiedCacheEntries(): number {
    return this.verified.size;
  }

  get accessTtlSec(): number {
    return Math.max(1, Math.round(this.opts.accessTtlMs / 1000));
  }

  /**
   * Signs an access token. `iat` has one-second resolution, so a revocation at
   * time T sets token_valid_after to the NEXT whole second (killing every token
   * of second T), and a token issued right after it takes iat = that second
   * (at most 1 s in the future) so it is not caught by its own revocation.
   */
  issue(input: IssueInput): { token: string; claims: AccessClaims } {
    const nowSec = Math.floor((input.issuedAt ?? this.clock.now()) / 1000);
    const iat = Math.max(nowSec, input.notBeforeIat);
    const claims: AccessClaims = {
      sub: input.userId,
      sid: input.sessionId,
      jti: randomBytes(16).toString("base64url"),
      ver: input.version,
      iat,
      exp: nowSec + this.accessTtlSec,
      iss: this.opts.issuer,
      aud: this.opts.audience,
      role: input.role,
    };
    // No `noTimestamp`: it would delete our own iat. jsonwebtoken keeps a given iat.
    const token = jwt.sign(claims, this.key, { algorithm: "HS256" });
    return { token, claims };
  }

  /**
   * Shape, size, header, signature, iss/aud/exp and claim types. Never throws.
   * A token verified before is answered from memory until its exp (+ the same tolerance
   * jsonwebtoken applies); past that it is verified again, which yields TOKEN_EXPIRED.
   */
  verifySignedClaims(token: unknown): VerifyResult {
    if (typeof token === "string") {
      const hit = this.verified.get(token);
      if (hit !== undefined) {
        if (Math.floor(this.clock.now() / 1000) < hit.claims.exp + CLOCK_TOLERANCE_SEC) return hit;
        this.verified.delete(token);
      }
    }
    const result = this.verifyUncached(token);
    if (!result.ok || this.verifiedMax === 0) return result;
    if (this.verified.size >= this.verifiedMax) this.verified.delete(this.verified.keys().next().value!);
    const frozen = Object.freeze(result);
    this.verified.set(token as string, frozen);
    return frozen;
  }

  private verifyUncached(token: unknown): VerifyResult {
    // Cheapest first: refuse non-strings and oversized input before any parsing.
    if (token === undefined || token === null || token === "") return { ok: false, code: ErrorCode.TOKEN_MISSING };
    if (typeof token !== "string") return { ok: false, code: ErrorCode.TOKEN_INVALID };
    if (token.length > MAX_TOKEN_BYTES || !JWT_SHAPE.test(token)) return { ok: false, code: ErrorCode.TOKEN_INVALID };
    if (!this.headerAcceptable(token)) return { ok: false, code: ErrorCode.TOKEN_INVALID };
    let payload: unknown;
    const options: jwt.VerifyOptions & { complete?: false } = {
      algorithms: ["HS256"],
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      clockTolerance: CLOCK_TOLERANCE_SEC,
      clockTimestamp: Math.floor(this.clock.now() / 1000),
    };
    try {
      payload = this.verifyWithAnyKey(token, options);
    } catch (err) {
      return { ok: false, code: err instanceof jwt.TokenExpiredError ? ErrorCode.TOKEN_EXPIRED : ErrorCode.TOKEN_INVALID };
    }
    const parsed = ClaimsSchema.safeParse(payload);
    if (!parsed.success) return { ok: false, code: ErrorCode.TOKEN_INVALID };
    // Frozen: the same object is handed to every later use of this token.
    return { ok: true, claims: Object.freeze(parsed.data) };
  }

  /**
   * The current key first; earlier keys only when its signature did not match, so the hot path
   * (tokens signed with the current key) costs one HMAC whatever JWT_SECRET_PREVIOUS holds.
   * jsonwebtoken checks the signature before the claims, so an old-key token past its exp still
   * reaches TokenExpiredError under its own key.
   */
  private verifyWithAnyKey(token: string, options: jwt.VerifyOptions & { complete?: false }): unknown {
    try {
      return jwt.verify(token, this.key, options);
    } catch (err) {
      if (!isBadSignature(err) || this.previousKeys.length === 0) throw err;
    }
    for (const key of this.previousKeys) {
      try {
        return jwt.verify(token, key, options);
      } catch (err) {
        if (!isBadSignature(err)) throw err;
      }
    }
    throw new jwt.JsonWebTokenError("invalid signature");
  }

  private headerAcceptable(token: string): boolean {
    try {
      const header: unknown = JSON.parse(Buffer.from(token.slice(0, token.indexOf(".")), "base64url").toString("utf8"));
      if (typeof header !== "object" || header === null || Array.isArray(header)) return false;
      const h = header as Record<string, unknown>;
      if (h.alg !== "HS256") return false;
      if (h.typ !== undefined && h.typ !== "JWT") return false;
      return Object.keys(h).every((k) => HEADER_ALLOWED.has(k));
    } catch {
      return false;
    }
  }
}

function isBadSignature(err: unknown): boolean {
  return err instanceof jwt.JsonWebTokenError && err.message === "invalid signature";
}

/**
 * Refresh tokens are `<sessionId>.<256 random bits>`: the session id is not a
 * secret (it is in every access token) and lets us rate-limit per session
 * before touching the store. Only the SHA-256 of the whole token is stored.
 */
export function newRefreshToken(sessionId: string): { token: string; hash: string } {
  const token = `${sessionId}.${randomBytes(32).toString("base64url")}`;
  return { token, hash: hashRefreshToken(token) };
}

export function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

const REFRESH_TOKEN = new RegExp(`^(${SESSION_ID_PATTERN.source.slice(1, -1)})\\.[A-Za-z0-9_-]{43}$`);

export function sessionIdOfRefreshToken(token: string): string | null {
  const m = REFRESH_TOKEN.exec(token);
  return m ? m[1]! : null;
}

/**
 * A session id carries its user's id: `<userId>.<128 random bits>`, so the store finds the
 * user's records (on a Redis Cluster: the user's slot) from the sid alone.
 */
export function newSessionId(userId: string): string {
  return `${userId}.${newId()}`;
}

/** Opaque ids (users, sessions): 128 random bits, url-safe. */
export function newId(): string {
  return randomBytes(16).toString("base64url");
}
