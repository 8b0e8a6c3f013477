/**
 * The rules that compute revocation marks, in one place: the memory store, the Redis store's
 * argument builders and the near-cache use these functions. What Redis must compute from its own
 * clock (TIME, read inside a script) is computed by MARK_RULES_LUA, whose helpers mirror these
 * functions one for one; test/unit/mark-rules.test.ts runs both on the same inputs.
 *
 * Times: `nowMs` and expiries in epoch ms; cutoffs (tokenValidAfter) in epoch seconds, compared
 * with a token's iat.
 */

/**
 * A revocation's cutoff: the next whole second. iat has one-second resolution, so a token issued
 * in the revocation's own second (iat = floor(now)) must be refused too (pitfalls 15).
 */
export function nextSecond(nowMs: number): number {
  return Math.floor(nowMs / 1000) + 1;
}

/**
 * A revoke-all's cutoff. Tokens issued after a revoke-all carry its cutoff as iat: a second
 * revoke-all within that second must still cut them off, so the cutoff only moves forward past
 * the previous one; and past `userCutoff`, a user revocation's cutoff of the same second, which
 * a token issued before it may carry as iat (Redis only: see USER_CLOCK in redis-scripts.ts).
 */
export function globalCutoff(nowMs: number, prevGlobalCutoff: number, userCutoff = 0): number {
  return Math.max(nextSecond(nowMs), prevGlobalCutoff + 1, userCutoff + 1);
}

/** When a revocation's marks expire: they must outlive every token they cover (markTtlMs). */
export function markExpiry(nowMs: number, markTtlMs: number): number {
  return nowMs + markTtlMs;
}

/** A banned user gets no new tokens, so the ban mark need not outlive the tokens it covers. */
export function banMarkExpiry(banUntil: number | null, markExpiresAt: number): number {
  return banUntil === null ? markExpiresAt : Math.min(banUntil, markExpiresAt);
}

/**
 * The same rules for scripts that read Redis TIME, prepended to them (redis-scripts.ts). Each
 * helper mirrors the TS function it names; keep them in step (the unit test compares them).
 * Lua 5.1 numbers are doubles: exact for epoch ms.
 */
export const MARK_RULES_LUA = `
-- mark-rules.ts nextSecond
local function nextSecond(nowMs)
  return math.floor(nowMs / 1000) + 1
end
-- mark-rules.ts globalCutoff
local function globalCutoff(nowMs, prevGlobalCutoff, userCutoff)
  return math.max(nextSecond(nowMs), prevGlobalCutoff + 1, (userCutoff or 0) + 1)
end
-- mark-rules.ts markExpiry
local function markExpiry(nowMs, markTtlMs)
  return nowMs + markTtlMs
end
`;
