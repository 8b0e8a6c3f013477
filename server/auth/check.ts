/**
 * THE token check: one function decides accept/refuse for HTTP (Bearer), the
 * socket.io handshake (auth.token) and auth:refresh. Synchronous and
 * memory-only: revocation state comes from the near-cache.
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
