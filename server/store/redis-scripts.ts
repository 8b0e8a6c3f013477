/**
 * The Lua scripts behind RedisStore's atomic multi-key changes (see the key
 * layout in redis.ts), and the argument layout of the revocation script.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { RevocationChange, RevocationEvent } from "./store";

/**
 * KEYS: un:<name>, u:<id>, names. ARGV: id, indexed '1'|'0' (registered, not a guest), lower-cased
 * name, then the user hash's field/value pairs.
 */
const CREATE_USER = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
if ARGV[2] == '1' then redis.call('ZADD', KEYS[3], 0, ARGV[3]) end
return 1`;

/**
 * KEYS: un:<name>, names. ARGV: prefix, new id, hasPassword '1'|'0', passwordHash, lower-cased
 * name, then a new user's field/value pairs.
 */
const UPSERT_ADMIN = `
local P = ARGV[1]
local id = redis.call('GET', KEYS[1])
if not id then
  id = ARGV[2]
  redis.call('SET', KEYS[1], id)
end
local ukey = P .. 'u:' .. id
if redis.call('EXISTS', ukey) == 0 then
  redis.call('HSET', ukey, unpack(ARGV, 6))
  redis.call('HSET', ukey, 'id', id)
elseif redis.call('HGET', ukey, 'role') ~= 'admin' then
  -- never promote a player who happens to hold the configured name
  return 0
end
redis.call('HSET', ukey, 'role', 'admin')
redis.call('ZADD', KEYS[2], 0, ARGV[5])
if ARGV[3] == '1' then
  redis.call('HSET', ukey, 'passwordHash', ARGV[4])
else
  redis.call('HDEL', ukey, 'passwordHash')
end
return redis.call('HGETALL', ukey)`;

/** Sets PEXPIREAT on an index zset to its highest score (its longest-lived member). */
const EXPIRE_INDEX_FN = `
local function expireIndex(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then redis.call('PEXPIREAT', key, top[2]) end
end`;

/**
 * A guest account is reached only through its sessions (no password): it expires with the
 * newest of them. Registered accounts never expire.
 */
const KEEP_GUEST_FN = `
local function keepGuestUntil(P, ukey, at)
  if redis.call('HGET', ukey, 'guest') ~= '1' then return end
  local name = redis.call('HGET', ukey, 'username')
  redis.call('PEXPIREAT', ukey, at)
  if name then redis.call('PEXPIREAT', P .. 'un:' .. string.lower(name), at) end
end
`;

/**
 * The token basis (see TokenBasis), read in the script that issues the token: username, role,
 * version, notBeforeIat (max of the user's and the live global cutoff, s), at (Redis TIME, ms).
 * Numbers go out as strings (a Lua number reply would be truncated to an integer anyway).
 */
const BASIS_FN = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function basis(u, globalKey)
  local nb = tonumber(u[4] or '0') or 0
  local g = redis.call('GET', globalKey)
  if g then
    local gt = tonumber(string.match(g, '"tokenValidAfter":(%d+)'))
    if gt and gt > nb then nb = gt end
  end
  return {u[1], u[2] or 'player', u[3] or '0', string.format('%d', nb), string.format('%d', nowMs())}
end
`;

/**
 * KEYS: s:<sid>, us:<uid>, u:<uid>, m:g, g:gen.
 * ARGV: prefix, sid, uid, device, now, expiresAt, refresh hash, expected user version.
 * Returns {'stale'} | {'ok', username, role, version, notBeforeIat, at}.
 */
const CREATE_SESSION = `${EXPIRE_INDEX_FN}${KEEP_GUEST_FN}${BASIS_FN}
local u = redis.call('HMGET', KEYS[3], 'username', 'role', 'version', 'tokenValidAfter')
-- the version seen when the password was verified: a revocation since then wins the race
if not u[1] or (tonumber(u[3] or '0') or 0) ~= tonumber(ARGV[8]) then return {'stale'} end
local gen = redis.call('GET', KEYS[5]) or '0'
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'userId', ARGV[3], 'device', ARGV[4], 'createdAt', ARGV[5], 'lastSeenAt', ARGV[5],
  'expiresAt', ARGV[6], 'gen', gen, 'state', 'live', 'cur', ARGV[7])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[2])
-- prune sessions that expired by now
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
expireIndex(KEYS[2])
keepGuestUntil(ARGV[1], KEYS[3], ARGV[6])
local b = basis(u, KEYS[4])
return {'ok', b[1], b[2], b[3], b[4], b[5]}`;

/**
 * KEYS: s:<sid>, m:g, g:gen. ARGV: prefix, presented hash, next hash, next sealed, now, next expiresAt,
 * grace ms, trail length (rotated hashes kept, 'prev' included), sid.
 * Returns {'invalid', uid?} | {'banned', uid} | {'reused', uid}
 *       | {'ok'|'grace', uid, device, createdAt, lastSeenAt, expiresAt, username, role, version, notBeforeIat, at, sealed?}.
 * The trail is one field of 64-hex hashes separated by spaces, so a plain find matches whole entries only.
 */
const ROTATE_REFRESH = `${EXPIRE_INDEX_FN}${KEEP_GUEST_FN}${BASIS_FN}
local P, h, now = ARGV[1], ARGV[2], tonumber(ARGV[5])
local s = redis.call('HMGET', KEYS[1], 'userId', 'state', 'expiresAt', 'gen', 'cur', 'prev', 'prevAt', 'prevSealed', 'trail', 'device', 'createdAt', 'lastSeenAt')
local uid = s[1]
if not uid then return {'invalid'} end
local trail = s[9] or ''
local isCur, isPrev = h == s[5], h == s[6]
-- only an authentic token learns anything about the session (its id alone is no secret)
if not (isCur or isPrev or string.find(trail, h, 1, true)) then return {'invalid'} end
local ukey = P .. 'u:' .. uid
local u = redis.call('HMGET', ukey, 'username', 'role', 'version', 'tokenValidAfter', 'ban')
if u[5] then
  local ok, ban = pcall(cjson.decode, u[5])
  local permanent = ok and type(ban) == 'table' and ban['until'] == cjson.null
  local untilMs = ok and type(ban) == 'table' and tonumber(ban['until']) or nil
  -- a ban that cannot be read counts as permanent
  if permanent or not untilMs or untilMs > now then return {'banned', uid} end
end
if s[2] ~= 'live' or tonumber(s[3]) <= now or not u[1] then return {'invalid', uid} end
if (tonumber(s[4] or '0') or 0) < (tonumber(redis.call('GET', KEYS[3]) or '0') or 0) then return {'invalid', uid} end
if not isCur then
  local grace = tonumber(ARGV[7])
  if isPrev and grace > 0 and now - tonumber(s[7]) <= grace then
    local b = basis(u, KEYS[2])
    return {'grace', uid, s[10], s[11], s[12], s[3], b[1], b[2], b[3], b[4], b[5], s[8]}
  end
  return {'reused', uid}
end

-- the old 'prev' joins the trail (newest first), which keeps ARGV[8] - 1 hashes
if s[6] then trail = string.sub(s[6] .. ' ' .. trail, 1, (tonumber(ARGV[8]) - 1) * 65 - 1) end
-- the chain slides: the session lives as long as its newest refresh token
local sexp = s[3]
if tonumber(ARGV[6]) > tonumber(sexp) then sexp = ARGV[6] end
redis.call('HSET', KEYS[1], 'cur', ARGV[3], 'prev', h, 'prevAt', ARGV[5], 'prevSealed', ARGV[4], 'trail', trail,
  'lastSeenAt', ARGV[5], 'expiresAt', sexp)
redis.call('PEXPIREAT', KEYS[1], sexp)
local uskey = P .. 'us:' .. uid
redis.call('ZADD', uskey, sexp, ARGV[9])
expireIndex(uskey)
keepGuestUntil(P, ukey, sexp)
local b = basis(u, KEYS[2])
return {'ok', uid, s[10], s[11], ARGV[5], sexp, b[1], b[2], b[3], b[4], b[5]}`;

/**
 * The whole revocation in one atomic step: durable state, marks with TTLs,
 * seq, publish. Keys are computed from the prefix (single Redis only).
 * Times come from Redis TIME, not from the calling node's clock: a node whose
 * clock is seconds off must not move a cutoff (tokens are issued on Redis time too, see BASIS_FN).
 * ARGV: 1 prefix, 2 kind, 3 userId, 4 sessionId, 5 jti, 6 jti mark expiresAt, 7 mark TTL ms,
 *       8 ban until ('' no ban, 'null' permanent, else ms), 9 ban JSON, 10 primary mark JSON without
 *       its times, 11 jti mark JSON|'', 12 ban mark JSON without its expiry, 13 event JSON without
 *       seq/times, 14 new passwordHash|'', 15 required current passwordHash|''.
 * Numbers are spliced in front of the JSON built by the caller (no number round-trips through cjson).
 */
const APPLY_REVOCATION = `${BASIS_FN}
local P, kind, uid, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = nowMs()
local expiresAt = now + tonumber(ARGV[7])
local function fmt(n) return string.format('%d', n) end
local function withHead(head, json)
  if json == '{}' then return '{' .. head .. '}' end
  return '{' .. head .. ',' .. string.sub(json, 2)
end

-- revoked sessions stay as tombstones until their expiry (an authentic token of one names its
-- user, so a banned user hears USER_BANNED); the sealed successor is no longer needed
local function killSession(id)
  local skey = P .. 's:' .. id
  if redis.call('EXISTS', skey) == 1 then
    redis.call('HSET', skey, 'state', 'revoked')
    redis.call('HDEL', skey, 'prevSealed', 'prev', 'trail')
  end
end

local head = '"at":' .. fmt(now) .. ',"expiresAt":' .. fmt(expiresAt)
if kind == 'session' then
  killSession(sid)
  redis.call('ZREM', P .. 'us:' .. uid, sid)
  redis.call('SET', P .. 'm:s:' .. sid, withHead('"expiresAt":' .. fmt(expiresAt), ARGV[10]), 'PXAT', fmt(expiresAt))
  if ARGV[11] ~= '' and tonumber(ARGV[6]) > now then redis.call('SET', P .. 'm:j:' .. ARGV[5], ARGV[11], 'PXAT', ARGV[6]) end
elseif kind == 'user' then
  local ukey = P .. 'u:' .. uid
  -- a password change applies only over the hash its caller verified (else a concurrent one won)
  if ARGV[15] ~= '' and redis.call('HGET', ukey, 'passwordHash') ~= ARGV[15] then return redis.error_reply('STALE_PASSWORD') end
  local tva = fmt(math.floor(now / 1000) + 1)
  local version = 0
  -- an unknown user still gets marks, never a half-made record
  if redis.call('EXISTS', ukey) == 1 then
    version = redis.call('HINCRBY', ukey, 'version', 1)
    redis.call('HSET', ukey, 'tokenValidAfter', tva)
    if ARGV[9] ~= '' then redis.call('HSET', ukey, 'ban', ARGV[9]) end
    if ARGV[14] ~= '' then redis.call('HSET', ukey, 'passwordHash', ARGV[14]) end
  end
  local uskey = P .. 'us:' .. uid
  for _, id in ipairs(redis.call('ZRANGE', uskey, 0, -1)) do killSession(id) end
  redis.call('DEL', uskey)
  local cut = '"version":' .. fmt(version) .. ',"tokenValidAfter":' .. tva
  redis.call('SET', P .. 'm:u:' .. uid, withHead(cut .. ',"expiresAt":' .. fmt(expiresAt), ARGV[10]), 'PXAT', fmt(expiresAt))
  if ARGV[8] ~= '' then
    -- a banned user gets no new tokens, so the ban mark need not outlive the tokens it covers
    local banExp = expiresAt
    if ARGV[8] ~= 'null' and tonumber(ARGV[8]) < banExp then banExp = tonumber(ARGV[8]) end
    if banExp > now then redis.call('SET', P .. 'm:b:' .. uid, withHead('"expiresAt":' .. fmt(banExp), ARGV[12]), 'PXAT', fmt(banExp)) end
  end
  head = head .. ',' .. cut
elseif kind == 'unban' then
  local ukey = P .. 'u:' .. uid
  if redis.call('EXISTS', ukey) == 1 then redis.call('HDEL', ukey, 'ban') end
  redis.call('DEL', P .. 'm:b:' .. uid)
elseif kind == 'global' then
  -- iat has one-second resolution and tokens issued after a revoke-all carry its cutoff as iat:
  -- a second revoke-all within that second must still cut them off, so the cutoff only moves forward.
  local tva = math.floor(now / 1000) + 1
  local prev = redis.call('GET', P .. 'm:g')
  if prev then
    local p = tonumber(string.match(prev, '"tokenValidAfter":(%d+)'))
    if p and p + 1 > tva then tva = p + 1 end
  end
  local cut = '"tokenValidAfter":' .. fmt(tva)
  redis.call('SET', P .. 'm:g', withHead(cut .. ',"expiresAt":' .. fmt(expiresAt), ARGV[10]), 'PXAT', fmt(expiresAt))
  -- every session that exists now may no longer refresh (durable: no TTL, one key)
  redis.call('INCR', P .. 'g:gen')
  head = head .. ',' .. cut
else
  return redis.error_reply('unknown revocation kind')
end

local seq = redis.call('INCR', P .. 'seq')
local event = withHead('"seq":' .. seq .. ',' .. head, ARGV[13])
local receivers = redis.call('PUBLISH', P .. 'revocations', event)
return {event, receivers}`;

/** EVALSHA with a fallback to EVAL when the script cache was flushed (restart). */
class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }
  async run(client: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return client.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

export const scripts = {
  createUser: new LuaScript(CREATE_USER),
  upsertAdmin: new LuaScript(UPSERT_ADMIN),
  createSession: new LuaScript(CREATE_SESSION),
  rotateRefresh: new LuaScript(ROTATE_REFRESH),
  applyRevocation: new LuaScript(APPLY_REVOCATION),
};

/** Script arguments for APPLY_REVOCATION; all JSON is built here except the numbers the script decides. */
export function revocationArgs(p: string, change: RevocationChange, ctx: { markTtlMs: number; nodeId: string }): (string | number)[] {
  const event: Partial<RevocationEvent> = { kind: change.kind, reason: change.reason, nodeId: ctx.nodeId };
  let userId = "";
  let sessionId = "";
  let jti = "";
  let jtiExp = 0;
  let banUntil = "";
  let banJson = "";
  let mark = "{}";
  let jtiMark = "";
  let banMark = "{}";
  let passwordHash = "";
  let ifPasswordHash = "";

  switch (change.kind) {
    case "session":
      ({ userId, sessionId } = change);
      Object.assign(event, { userId, sessionId });
      if (change.note) event.note = change.note;
      mark = JSON.stringify({ t: "s", sessionId, reason: change.reason });
      if (change.jti && change.jtiExp !== undefined) {
        jti = change.jti;
        jtiExp = change.jtiExp;
        event.jti = jti;
        jtiMark = JSON.stringify({ t: "j", jti, expiresAt: jtiExp, reason: change.reason });
      }
      break;
    case "user":
      userId = change.userId;
      event.userId = userId;
      if (change.note) event.note = change.note;
      mark = JSON.stringify({ t: "u", userId, reason: change.reason });
      passwordHash = change.passwordHash ?? "";
      ifPasswordHash = change.ifPasswordHash ?? "";
      if (change.ban) {
        event.ban = change.ban;
        banJson = JSON.stringify(change.ban);
        banUntil = change.ban.until === null ? "null" : String(change.ban.until);
        banMark = JSON.stringify({ t: "b", userId, until: change.ban.until });
      }
      break;
    case "unban":
      userId = change.userId;
      event.userId = userId;
      break;
    case "global":
      mark = JSON.stringify({ t: "g" });
      break;
  }
  return [p, change.kind, userId, sessionId, jti, jtiExp, ctx.markTtlMs, banUntil, banJson, mark, jtiMark, banMark, JSON.stringify(event), passwordHash, ifPasswordHash];
}
