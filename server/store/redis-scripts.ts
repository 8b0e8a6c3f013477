/**
 * The Lua scripts behind RedisStore (key layout in redis.ts). Each one touches the keys of ONE
 * slot, all passed in KEYS (no key name is built in Lua), so Redis Cluster can route it: a user's
 * slot `{<userId>}`, the global slot `{g}`, or one username's key.
 */
import { createHash } from "node:crypto";
import { MARK_RULES_LUA } from "../revocation/mark-rules";
import type { RedisClient } from "./redis-topology";

const NOW_FN = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%d', n) end
local function cutOf(json)
  if not json then return 0 end
  return tonumber(string.match(json, '"tokenValidAfter":(%d+)')) or 0
end
`;

// ---------------------------------------------------------------- the {g} slot

/**
 * What a session step needs from the global slot, read at one instant: the refresh generation,
 * the live global cutoff (s) and the time (ms) the token will be issued at.
 * KEYS: gen, global mark. Returns {gen, globalCutoff, now}.
 */
const READ_GLOBAL = `${NOW_FN}
return {redis.call('GET', KEYS[1]) or '0', fmt(cutOf(redis.call('GET', KEYS[2]))), fmt(nowMs())}`;

/**
 * The clock of a user revocation, read on {g} like the session steps' (so cutoffs and issue times
 * compare on one clock), and its cutoff remembered for the rest of that second: a revoke-all in the
 * same second moves its own cutoff past it (see GLOBAL_REVOKE). KEYS: user-cut. Returns now (ms).
 */
const USER_CLOCK = `${NOW_FN}${MARK_RULES_LUA}
local now = nowMs()
local tva = nextSecond(now)
local prev = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tva > prev then redis.call('SET', KEYS[1], fmt(tva), 'PXAT', fmt(tva * 1000)) end
return fmt(now)`;

/**
 * Assigns the next seq to an event whose durable part is written already, and publishes it.
 * KEYS: seq, channel (a sharded channel of the same slot). ARGV: event JSON without seq, the
 * publish command (SPUBLISH; PUBLISH on a Redis 6.2 primary, which has no sharded pub/sub).
 */
const PUBLISH_EVENT = `
local seq = redis.call('INCR', KEYS[1])
local event = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
return {event, redis.call(ARGV[2], KEYS[2], event)}`;

/**
 * Revoke-all, whole in one step: the global mark, the generation (every session that exists now
 * can no longer refresh; durable: no TTL, one key), seq, publish.
 * The cutoff only moves forward, past the last one and past any user cutoff of its own second
 * (USER_CLOCK): mark-rules.ts globalCutoff, here on Redis's clock.
 * KEYS: global mark, gen, seq, channel, user-cut. ARGV: mark TTL ms, event JSON without seq/times,
 * the publish command (see PUBLISH_EVENT).
 */
const GLOBAL_REVOKE = `${NOW_FN}${MARK_RULES_LUA}
local now = nowMs()
local expiresAt = markExpiry(now, tonumber(ARGV[1]))
local ucut = tonumber(redis.call('GET', KEYS[5]) or '0') or 0
local tva = globalCutoff(now, cutOf(redis.call('GET', KEYS[1])), ucut)
local times = '"tokenValidAfter":' .. fmt(tva) .. ',"expiresAt":' .. fmt(expiresAt)
redis.call('SET', KEYS[1], '{"t":"g",' .. times .. '}', 'PXAT', fmt(expiresAt))
redis.call('INCR', KEYS[2])
local seq = redis.call('INCR', KEYS[3])
local event = '{"seq":' .. seq .. ',"at":' .. fmt(now) .. ',' .. times .. ',' .. string.sub(ARGV[2], 2)
return {event, redis.call(ARGV[3], KEYS[4], event)}`;

/** The dataset's epoch (created once) and the seq, read together. KEYS: epoch, seq. ARGV: a fresh epoch. */
const FEED_STATE = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2]) or '0'}`;

// ---------------------------------------------------------------- a username's slot

/**
 * Claims a username: "<userId> <claimedAtMs>". KEYS: un:<name>. ARGV: user id.
 * Returns {'ok'} or {'held', value, now}.
 */
const CLAIM_NAME = `${NOW_FN}
local cur = redis.call('GET', KEYS[1])
local now = nowMs()
if not cur then
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. fmt(now))
  return {'ok'}
end
return {'held', cur, fmt(now)}`;

/** Takes over a claim still holding `expected` (its user is missing). KEYS: un:<name>. ARGV: expected, user id. */
const TAKE_NAME = `${NOW_FN}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. ' ' .. fmt(nowMs()))
return 1`;

// ---------------------------------------------------------------- a user's slot

/**
 * Creates the admin's record or makes the existing one's password the given one.
 * KEYS: u. ARGV: hasPassword '1'|'0', passwordHash, then a new user's field/value pairs.
 * Returns 0 (the record is a player's) or the record's HGETALL.
 */
const UPSERT_ADMIN = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
elseif redis.call('HGET', KEYS[1], 'role') ~= 'admin' then
  -- never promote a player who happens to hold the configured name
  return 0
end
redis.call('HSET', KEYS[1], 'role', 'admin')
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'passwordHash', ARGV[2])
else
  redis.call('HDEL', KEYS[1], 'passwordHash')
end
return redis.call('HGETALL', KEYS[1])`;

/**
 * Shared by the session steps. The token basis (see TokenBasis): the user's version and cutoff
 * read here, the global cutoff and the issue time read on {g} just before (ARGV gcut, at).
 * A user revocation whose clock read on {g} came after ours ('revokedAt' > at) asks the caller to
 * read {g} again: a revoke-all between our read and it would otherwise not cover our token (see
 * RedisStore.sessionStep). A guest account lives as long as its newest session.
 */
const SESSION_FNS = `
local function expireIndex(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end
local function keepGuestUntil(ukey, at)
  if redis.call('HGET', ukey, 'guest') ~= '1' then return '' end
  redis.call('PEXPIREAT', ukey, at)
  return string.lower(redis.call('HGET', ukey, 'username') or '')
end
local function basis(u, gcut, at)
  local nb = tonumber(u[4] or '0') or 0
  if gcut > nb then nb = gcut end
  return {u[1], u[2] or 'player', u[3] or '0', string.format('%d', nb), at}
end
local function tooEarly(u, at)
  return (tonumber(u[6] or '0') or 0) > tonumber(at)
end
`;

/**
 * KEYS: s, us, u. ARGV: sid, uid, device, now, expiresAt, refresh hash, expected user version,
 * gen, gcut, at. Returns {'stale'} | {'retry'} | {'ok', username, role, version, notBeforeIat, at, guestName}.
 * The session keeps the user version and the global generation it was made under: a user
 * revocation (version+1) or a revoke-all (gen+1) after it stops its refresh.
 */
const CREATE_SESSION = `${SESSION_FNS}
local u = redis.call('HMGET', KEYS[3], 'username', 'role', 'version', 'tokenValidAfter', 'ban', 'revokedAt')
-- the version seen when the password was verified: a revocation since then wins the race
if not u[1] or (tonumber(u[3] or '0') or 0) ~= tonumber(ARGV[7]) then return {'stale'} end
if tooEarly(u, ARGV[10]) then return {'retry'} end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'userId', ARGV[2], 'device', ARGV[3], 'createdAt', ARGV[4], 'lastSeenAt', ARGV[4],
  'expiresAt', ARGV[5], 'gen', ARGV[8], 'ver', u[3] or '0', 'state', 'live', 'cur', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
-- prune sessions that expired by now
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
expireIndex(KEYS[2])
local guestName = keepGuestUntil(KEYS[3], ARGV[5])
local b = basis(u, tonumber(ARGV[9]), ARGV[10])
return {'ok', b[1], b[2], b[3], b[4], b[5], guestName}`;

/**
 * KEYS: s, u, us. ARGV: presented hash, next hash, next sealed, now, next expiresAt, grace ms,
 * trail length (rotated hashes kept, 'prev' included), sid, gen, gcut, at.
 * Returns {'invalid', uid?} | {'banned', uid} | {'reused', uid} | {'retry'}
 *       | {'ok'|'grace', uid, device, createdAt, lastSeenAt, expiresAt, username, role, version, notBeforeIat, at, guestName, sealed?}.
 * The trail is one field of 64-hex hashes separated by spaces, so a plain find matches whole entries only.
 */
const ROTATE_REFRESH = `${SESSION_FNS}
local h, now = ARGV[1], tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'userId', 'state', 'expiresAt', 'gen', 'cur', 'prev', 'prevAt', 'prevSealed', 'trail', 'device', 'createdAt', 'lastSeenAt', 'ver')
local uid = s[1]
if not uid then return {'invalid'} end
local trail = s[9] or ''
local isCur, isPrev = h == s[5], h == s[6]
-- only an authentic token learns anything about the session (its id alone is no secret)
if not (isCur or isPrev or string.find(trail, h, 1, true)) then return {'invalid'} end
local u = redis.call('HMGET', KEYS[2], 'username', 'role', 'version', 'tokenValidAfter', 'ban', 'revokedAt')
if u[5] then
  local ok, ban = pcall(cjson.decode, u[5])
  local permanent = ok and type(ban) == 'table' and ban['until'] == cjson.null
  local untilMs = ok and type(ban) == 'table' and tonumber(ban['until']) or nil
  -- a ban that cannot be read counts as permanent
  if permanent or not untilMs or untilMs > now then return {'banned', uid} end
end
if s[2] ~= 'live' or tonumber(s[3]) <= now or not u[1] then return {'invalid', uid} end
-- made before a revocation of its user, or before a revoke-all
if (tonumber(s[13] or '-1') or -1) ~= (tonumber(u[3] or '0') or 0) then return {'invalid', uid} end
if (tonumber(s[4] or '0') or 0) < (tonumber(ARGV[9]) or 0) then return {'invalid', uid} end
if tooEarly(u, ARGV[11]) then return {'retry'} end
if not isCur then
  local grace = tonumber(ARGV[6])
  if isPrev and grace > 0 and now - tonumber(s[7]) <= grace then
    local b = basis(u, tonumber(ARGV[10]), ARGV[11])
    return {'grace', uid, s[10], s[11], s[12], s[3], b[1], b[2], b[3], b[4], b[5], '', s[8]}
  end
  return {'reused', uid}
end

-- the old 'prev' joins the trail (newest first), which keeps ARGV[7] - 1 hashes
if s[6] then trail = string.sub(s[6] .. ' ' .. trail, 1, (tonumber(ARGV[7]) - 1) * 65 - 1) end
-- the chain slides: the session lives as long as its newest refresh token
local sexp = s[3]
if tonumber(ARGV[5]) > tonumber(sexp) then sexp = ARGV[5] end
redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', h, 'prevAt', ARGV[4], 'prevSealed', ARGV[3], 'trail', trail,
  'lastSeenAt', ARGV[4], 'expiresAt', sexp)
redis.call('PEXPIREAT', KEYS[1], sexp)
redis.call('ZADD', KEYS[3], sexp, ARGV[8])
expireIndex(KEYS[3])
local guestName = keepGuestUntil(KEYS[2], sexp)
local b = basis(u, tonumber(ARGV[10]), ARGV[11])
return {'ok', uid, s[10], s[11], ARGV[4], sexp, b[1], b[2], b[3], b[4], b[5], guestName}`;

/**
 * The durable part of a session, user or unban revocation, on the user's slot (the seq and the
 * publish follow on {g}: PUBLISH_EVENT). Times are Redis times: the user slot's TIME, or for a
 * user revocation the {g} clock read just before (ARGV now), which session steps compare with;
 * with that `now` known before the script, the caller computes the user kind's cutoff and
 * expiries itself (mark-rules.ts) and passes them.
 * KEYS: 1 u, 2 us, 3 m:u, 4 m:b, 5 m:s, 6 m:j, 7.. session keys (the session revoked, or every
 * session the index listed when the caller read it: a session missed by that read still dies,
 * its 'ver' no longer matching the user's).
 * ARGV: 1 kind, 2 now ms|'', 3 mark TTL ms, 4 jti mark expiresAt, 5 ban mark expiresAt ('' no
 * ban mark: no ban, or one already over), 6 ban JSON, 7 primary mark JSON without its times,
 * 8 jti mark JSON|'', 9 ban mark JSON without expiry, 10 new passwordHash|'', 11 required current
 * passwordHash|'', 12 session id|'', 13 marks' expiresAt|'' (given with now), 14 user cutoff|''.
 * Returns {at, expiresAt, version, tokenValidAfter} (strings; the last two '' unless user).
 */
const REVOKE_IN_USER_SLOT = `${NOW_FN}${MARK_RULES_LUA}
local kind = ARGV[1]
local now = tonumber(ARGV[2]) or nowMs()
local expiresAt = tonumber(ARGV[13]) or markExpiry(now, tonumber(ARGV[3]))
local function withHead(head, json)
  if json == '{}' then return '{' .. head .. '}' end
  return '{' .. head .. ',' .. string.sub(json, 2)
end
-- revoked sessions stay as tombstones until their expiry (an authentic token of one names its
-- user, so a banned user hears USER_BANNED); the sealed successor is no longer needed
local function killSessions()
  for i = 7, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('HSET', KEYS[i], 'state', 'revoked')
      redis.call('HDEL', KEYS[i], 'prevSealed', 'prev', 'trail')
    end
  end
end

if kind == 'session' then
  killSessions()
  redis.call('ZREM', KEYS[2], ARGV[12])
  redis.call('SET', KEYS[5], withHead('"expiresAt":' .. fmt(expiresAt), ARGV[7]), 'PXAT', fmt(expiresAt))
  if ARGV[8] ~= '' and tonumber(ARGV[4]) > now then redis.call('SET', KEYS[6], ARGV[8], 'PXAT', ARGV[4]) end
  return {fmt(now), fmt(expiresAt), '', ''}
elseif kind == 'user' then
  -- a password change applies only over the hash its caller verified (else a concurrent one won)
  if ARGV[11] ~= '' and redis.call('HGET', KEYS[1], 'passwordHash') ~= ARGV[11] then return redis.error_reply('STALE_PASSWORD') end
  local tva = ARGV[14]
  local version = 0
  -- an unknown user still gets marks, never a half-made record
  if redis.call('EXISTS', KEYS[1]) == 1 then
    version = redis.call('HINCRBY', KEYS[1], 'version', 1)
    redis.call('HSET', KEYS[1], 'tokenValidAfter', tva, 'revokedAt', fmt(now))
    if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'ban', ARGV[6]) end
    if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'passwordHash', ARGV[10]) end
  end
  killSessions()
  redis.call('DEL', KEYS[2])
  local cut = '"version":' .. fmt(version) .. ',"tokenValidAfter":' .. tva
  redis.call('SET', KEYS[3], withHead(cut .. ',"expiresAt":' .. fmt(expiresAt), ARGV[7]), 'PXAT', fmt(expiresAt))
  if ARGV[5] ~= '' then redis.call('SET', KEYS[4], withHead('"expiresAt":' .. ARGV[5], ARGV[9]), 'PXAT', ARGV[5]) end
  return {fmt(now), fmt(expiresAt), fmt(version), tva}
elseif kind == 'unban' then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HDEL', KEYS[1], 'ban') end
  redis.call('DEL', KEYS[4])
  return {fmt(now), fmt(expiresAt), '', ''}
end
return redis.error_reply('unknown revocation kind')`;

/** EVALSHA with a fallback to EVAL when the script cache was flushed (restart, failover, a new node). */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }
  async run(client: RedisClient, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

export const scripts = {
  readGlobal: new LuaScript(READ_GLOBAL),
  userClock: new LuaScript(USER_CLOCK),
  publishEvent: new LuaScript(PUBLISH_EVENT),
  globalRevoke: new LuaScript(GLOBAL_REVOKE),
  feedState: new LuaScript(FEED_STATE),
  claimName: new LuaScript(CLAIM_NAME),
  takeName: new LuaScript(TAKE_NAME),
  upsertAdmin: new LuaScript(UPSERT_ADMIN),
  createSession: new LuaScript(CREATE_SESSION),
  rotateRefresh: new LuaScript(ROTATE_REFRESH),
  revokeInUserSlot: new LuaScript(REVOKE_IN_USER_SLOT),
};
