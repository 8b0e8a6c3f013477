/**
 * The Lua scripts behind RedisStore's atomic multi-key changes (see the key
 * layout in redis.ts), and the argument layout of the revocation script.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { RevocationChange, RevocationEvent } from "./store";

/** KEYS: un:<name>, u:<id>. ARGV: id, then the user hash's field/value pairs. */
const CREATE_USER = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
return 1`;

/** KEYS: u:<id>. ARGV: passwordHash. Never creates a half user. */
const SET_PASSWORD = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'passwordHash', ARGV[1]) end
return 1`;

/** KEYS: un:<name>. ARGV: prefix, new id, hasPassword '1'|'0', passwordHash, then a new user's field/value pairs. */
const UPSERT_ADMIN = `
local P = ARGV[1]
local id = redis.call('GET', KEYS[1])
if not id then
  id = ARGV[2]
  redis.call('SET', KEYS[1], id)
end
local ukey = P .. 'u:' .. id
if redis.call('EXISTS', ukey) == 0 then
  redis.call('HSET', ukey, unpack(ARGV, 5))
  redis.call('HSET', ukey, 'id', id)
elseif redis.call('HGET', ukey, 'role') ~= 'admin' then
  -- never promote a player who happens to hold the configured name
  return 0
end
redis.call('HSET', ukey, 'role', 'admin')
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
 * KEYS: s:<sid>, r:<hash>, us:<uid>, sr:<sid>, u:<uid>.
 * ARGV: sid, uid, device, createdAt, lastSeenAt, expiresAt, hash, refresh createdAt, refresh expiresAt, prefix.
 */
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

const CREATE_SESSION = `${EXPIRE_INDEX_FN}${KEEP_GUEST_FN}
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'userId', ARGV[2], 'device', ARGV[3], 'createdAt', ARGV[4], 'lastSeenAt', ARGV[5], 'expiresAt', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
redis.call('HSET', KEYS[2], 'sessionId', ARGV[1], 'userId', ARGV[2], 'createdAt', ARGV[8], 'expiresAt', ARGV[9], 'state', 'live')
redis.call('PEXPIREAT', KEYS[2], ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[7])
expireIndex(KEYS[4])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
-- prune sessions that expired by now (createdAt is the caller's now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
expireIndex(KEYS[3])
keepGuestUntil(ARGV[10], KEYS[5], ARGV[6])
return 1`;

/**
 * KEYS: r:<old>, r:<new>. ARGV: prefix, now, new hash, new createdAt, new expiresAt.
 * Returns {'invalid', uid?} | {'reused', uid, sid} | {'ok', sid, uid, device, createdAt, lastSeenAt, expiresAt}.
 */
const ROTATE_REFRESH = `${EXPIRE_INDEX_FN}${KEEP_GUEST_FN}
local P = ARGV[1]
local now = tonumber(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 'sessionId', 'userId', 'expiresAt', 'state')
local sid, uid = rec[1], rec[2]
if not sid then return {'invalid'} end
if tonumber(rec[3]) <= now or rec[4] == 'revoked' then return {'invalid', uid} end
if rec[4] == 'rotated' then return {'reused', uid, sid} end
local skey = P .. 's:' .. sid
local s = redis.call('HMGET', skey, 'device', 'createdAt', 'expiresAt')
if not s[2] or tonumber(s[3]) <= now then return {'invalid', uid} end
local rva = redis.call('GET', P .. 'g:rva')
if rva and tonumber(s[2]) < tonumber(rva) then return {'invalid', uid} end

redis.call('HSET', KEYS[1], 'state', 'rotated')
local nextExp = ARGV[5]
redis.call('HSET', KEYS[2], 'sessionId', sid, 'userId', uid, 'createdAt', ARGV[4], 'expiresAt', nextExp, 'state', 'live')
redis.call('PEXPIREAT', KEYS[2], nextExp)
-- the chain slides: the session lives as long as its newest refresh token
local sexp = s[3]
if tonumber(nextExp) > tonumber(sexp) then sexp = nextExp end
redis.call('HSET', skey, 'lastSeenAt', ARGV[2], 'expiresAt', sexp)
redis.call('PEXPIREAT', skey, sexp)
local srkey = P .. 'sr:' .. sid
redis.call('ZADD', srkey, nextExp, ARGV[3])
redis.call('ZREMRANGEBYSCORE', srkey, '-inf', ARGV[2])
expireIndex(srkey)
local uskey = P .. 'us:' .. uid
redis.call('ZADD', uskey, sexp, sid)
expireIndex(uskey)
keepGuestUntil(P, P .. 'u:' .. uid, sexp)
return {'ok', sid, uid, s[1], s[2], ARGV[2], sexp}`;

/**
 * The whole revocation in one atomic step: durable state, marks with TTLs,
 * seq, publish. Keys are computed from the prefix (single Redis only).
 * ARGV: 1 prefix, 2 kind, 3 userId, 4 sessionId, 5 jti, 6 jtiExp, 7 mark expiresAt,
 *       8 tokenValidAfter (s), 9 ban JSON|'', 10 ban mark expiresAt|'', 11 primary mark JSON,
 *       12 jti mark JSON|'' , 13 ban mark JSON|'', 14 event JSON without seq/version, 15 now.
 * The user mark and the event get `version`/`seq` spliced in front of the JSON built by the caller
 * (so no number ever round-trips through Lua's cjson).
 */
const APPLY_REVOCATION = `
local P, kind, uid, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expiresAt, now = ARGV[7], ARGV[15]

local function killSession(id)
  local srkey = P .. 'sr:' .. id
  for _, h in ipairs(redis.call('ZRANGE', srkey, 0, -1)) do
    local rkey = P .. 'r:' .. h
    -- tombstone, never resurrect an expired record without a TTL
    if redis.call('EXISTS', rkey) == 1 then redis.call('HSET', rkey, 'state', 'revoked') end
  end
  redis.call('DEL', srkey, P .. 's:' .. id)
end

local version = nil
local globalTva = nil
if kind == 'session' then
  killSession(sid)
  redis.call('ZREM', P .. 'us:' .. uid, sid)
  redis.call('SET', P .. 'm:s:' .. sid, ARGV[11], 'PXAT', expiresAt)
  if ARGV[12] ~= '' then redis.call('SET', P .. 'm:j:' .. ARGV[5], ARGV[12], 'PXAT', ARGV[6]) end
elseif kind == 'user' then
  local ukey = P .. 'u:' .. uid
  version = 0
  -- an unknown user still gets marks, never a half-made record
  if redis.call('EXISTS', ukey) == 1 then
    version = redis.call('HINCRBY', ukey, 'version', 1)
    redis.call('HSET', ukey, 'tokenValidAfter', ARGV[8])
    if ARGV[9] ~= '' then redis.call('HSET', ukey, 'ban', ARGV[9]) end
  end
  local uskey = P .. 'us:' .. uid
  for _, id in ipairs(redis.call('ZRANGE', uskey, 0, -1)) do killSession(id) end
  redis.call('DEL', uskey)
  redis.call('SET', P .. 'm:u:' .. uid, '{"version":' .. version .. ',' .. string.sub(ARGV[11], 2), 'PXAT', expiresAt)
  if ARGV[13] ~= '' then redis.call('SET', P .. 'm:b:' .. uid, ARGV[13], 'PXAT', ARGV[10]) end
elseif kind == 'unban' then
  local ukey = P .. 'u:' .. uid
  if redis.call('EXISTS', ukey) == 1 then redis.call('HDEL', ukey, 'ban') end
  redis.call('DEL', P .. 'm:b:' .. uid)
elseif kind == 'global' then
  -- iat has one-second resolution and tokens issued after a revoke-all carry its cutoff as iat:
  -- a second revoke-all within that second must still cut them off, so the cutoff only moves forward.
  globalTva = tonumber(ARGV[8])
  local prev = redis.call('GET', P .. 'm:g')
  if prev then
    local p = tonumber(string.match(prev, '"tokenValidAfter":(%d+)'))
    if p and p + 1 > globalTva then globalTva = p + 1 end
  end
  globalTva = string.format('%d', globalTva)
  redis.call('SET', P .. 'm:g', '{"tokenValidAfter":' .. globalTva .. ',' .. string.sub(ARGV[11], 2), 'PXAT', expiresAt)
  local rva = redis.call('GET', P .. 'g:rva')
  if not rva or tonumber(rva) < tonumber(now) then redis.call('SET', P .. 'g:rva', now) end
else
  return redis.error_reply('unknown revocation kind')
end

local seq = redis.call('INCR', P .. 'seq')
local head = '{"seq":' .. seq
if version then head = head .. ',"version":' .. version end
if globalTva then head = head .. ',"tokenValidAfter":' .. globalTva end
local event = head .. ',' .. string.sub(ARGV[14], 2)
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
  setPassword: new LuaScript(SET_PASSWORD),
  upsertAdmin: new LuaScript(UPSERT_ADMIN),
  createSession: new LuaScript(CREATE_SESSION),
  rotateRefresh: new LuaScript(ROTATE_REFRESH),
  applyRevocation: new LuaScript(APPLY_REVOCATION),
};

/** Script arguments for APPLY_REVOCATION; all JSON is built here so numbers keep their precision. */
export function revocationArgs(p: string, change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): (string | number)[] {
  const { now, markTtlMs, nodeId } = ctx;
  const expiresAt = now + markTtlMs;
  const event: Omit<RevocationEvent, "seq" | "version"> = { kind: change.kind, reason: change.reason, at: now, expiresAt, nodeId };
  let userId = "";
  let sessionId = "";
  let jti = "";
  let jtiExp = 0;
  let tokenValidAfter = 0;
  let banJson = "";
  let banExpiresAt: number | "" = "";
  let mark = "";
  let jtiMark = "";
  let banMark = "";

  switch (change.kind) {
    case "session":
      ({ userId, sessionId } = change);
      Object.assign(event, { userId, sessionId });
      if (change.note) event.note = change.note;
      mark = JSON.stringify({ t: "s", sessionId, expiresAt, reason: change.reason });
      if (change.jti) {
        jti = change.jti;
        jtiExp = change.jtiExp ?? expiresAt;
        event.jti = jti;
        if (jtiExp > now) jtiMark = JSON.stringify({ t: "j", jti, expiresAt: jtiExp, reason: change.reason });
      }
      break;
    case "user":
      userId = change.userId;
      tokenValidAfter = Math.floor(now / 1000) + 1;
      Object.assign(event, { userId, tokenValidAfter });
      if (change.note) event.note = change.note;
      // The script puts "version" in front of this object.
      mark = JSON.stringify({ t: "u", userId, tokenValidAfter, expiresAt, reason: change.reason });
      if (change.ban) {
        event.ban = change.ban;
        banJson = JSON.stringify(change.ban);
        // A banned user gets no new tokens, so the ban mark need not outlive the tokens it covers.
        const until = change.ban.until;
        const banExp = until === null ? expiresAt : Math.min(until, expiresAt);
        if (banExp > now) {
          banExpiresAt = banExp;
          banMark = JSON.stringify({ t: "b", userId, until, expiresAt: banExp });
        }
      }
      break;
    case "unban":
      userId = change.userId;
      event.userId = userId;
      break;
    case "global":
      // The script raises this past the current cutoff if needed and puts it in front of the mark and the event.
      tokenValidAfter = Math.floor(now / 1000) + 1;
      mark = JSON.stringify({ t: "g", expiresAt });
      break;
  }
  return [p, change.kind, userId, sessionId, jti, jtiExp, expiresAt, tokenValidAfter, banJson, banExpiresAt, mark, jtiMark, banMark, JSON.stringify(event), now];
}
