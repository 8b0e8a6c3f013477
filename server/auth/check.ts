/**
 * THE token check: one function decides accept/refuse for HTTP (Bearer), the
 * socket.io handshake (auth.token) and auth:refresh. Synchronous and
 * memory-only: revocation state comes from the near-cache. Served through
 * `withReadThrough`, which adds one store read only while the node is out of
 * sync with the revocation feed.
 */
import type { AccessClaims } from "../../shared/claims";
import { ErrorCode } from "../../shared/errors";
import type { Clock } from "../clock";
import type { RevocationCache } from "../revocation/cache";
import type { TokenService } from "./tokens";

export type CheckResult = { ok: true; claims: AccessClaims } | { ok: false; code: ErrorCode };

export interface TokenCheckDeps {
  tokens: TokenService;
  cache: RevocationCache;
  clock: Clock;
  /** false while this node's revocation state is older than REVOCATION_MAX_STALENESS */
  revocationAvailable(): boolean;
}

export type TokenCheck = (token: unknown) => CheckResult;

export function createTokenCheck(deps: TokenCheckDeps): TokenCheck {
  const { tokens, cache, clock } = deps;
  return function checkAccessToken(token: unknown): CheckResult {
    // Shape/size, header, signature, iss/aud/exp: cheap and stateless, so first.
    const verified = tokens.verifySignedClaims(token);
    if (!verified.ok) return verified;
    // Refuse rather than admit on revocation state we can no longer vouch for.
    if (!deps.revocationAvailable()) return { ok: false, code: ErrorCode.REVOCATION_UNAVAILABLE };
    // token_valid_after (global, user), version, jti, session, ban.
    const covered = cache.coverage(verified.claims, clock.now());
    return covered ? { ok: false, code: covered.code } : verified;
  };
}

/**
 * The check as HTTP and socket.io use it: a plain result when the cache can answer alone (no
 * promise, no microtask on the hot path), a promise only while a store read is needed. Callers
 * `await` it either way.
 */
export type LiveTokenCheck = (token: unknown) => CheckResult | Promise<CheckResult>;

export interface ReadThroughDeps {
  /** false while the feed may have missed revocations */
  inSync(): boolean;
  /** reads the marks that could cover these claims from the store into the cache (never throws) */
  readMarksFor(claims: AccessClaims): Promise<void>;
}

/**
 * In sync, the cache holds every live mark and the check answers alone. Out of
 * sync, the feed may have missed a revocation of this very token, and a node
 * that did not receive it cannot have confirmed it: so a token that passes on
 * the cache is checked again after reading its own marks from the store (one
 * round trip, only in that state). If the store cannot be read, the staleness
 * rule inside the check decides.
 */
export function withReadThrough(check: TokenCheck, deps: ReadThroughDeps): LiveTokenCheck {
  const decideAfterRead = async (token: unknown, claims: AccessClaims): Promise<CheckResult> => {
    await deps.readMarksFor(claims);
    return check(token); // decide again, on the cache with the token's own marks in it
  };
  return (token: unknown): CheckResult | Promise<CheckResult> => {
    const result = check(token);
    if (!result.ok || deps.inSync()) return result;
    return decideAfterRead(token, result.claims);
  };
}
