/**
 * RedisStore: the Store for cluster mode, on one Redis (not Redis Cluster: the
 * Lua scripts build some key names from the prefix inside the script, which
 * Cluster's slot routing forbids).
 *
 * Keys (P = keyPrefix, default "gh:"; ioredis' own keyPrefix is not used
 * because it applies neither to SCAN patterns nor to names built in Lua):
 *   P u:<id>        HASH  user record (passwordHash / ban fields absent = null; ban is JSON)
 *   P un:<name>     STR   lower-cased username -> user id
 *   P s:<sid>       HASH  session record, PEXPIREAT expiresAt
 *   P us:<uid>      ZSET  the user's session ids, scored by expiresAt
 *   P sr:<sid>      ZSET  the session's refresh hashes, scored by expiresAt
 *   P r:<hash>      HASH  refresh record + state live|rotated|revoked, PEXPIREAT expiresAt
 *   P m:<t>:<id>    STR   revocation mark (JSON incl. expiresAt), PXAT expiresAt
 *   P g:rva         STR   global "refresh valid after" (ms). No TTL: it is one
 *                         key, and it must outlive every refresh token it refuses
 *                         whatever the configured refresh lifetime is.
 *   P seq           STR   revocation sequence counter
 *   P epoch         STR   random id of this dataset, set once (a Redis that lost its data gets a new one)
 *   P audit         LIST  newest first, capped
 *   channel P revocations: RevocationEvent JSON
 *   channel P acks:<nodeId>: "<seq>", a node has applied one of <nodeId>'s events
 *
 * Revoked and rotated refresh records are kept (as tombstones) until their own
 * expiry, so a refresh with them is answered "invalid" with the owner's userId
 * (a banned user then hears USER_BANNED) or "reused".
 *
 * Every Redis failure surfaces as GatehouseError(REVOCATION_UNAVAILABLE) (503);
 * the command client does not queue or resend, so calls fail fast in an outage.
 */
import { createHash, randomBytes } from "node:crypto";
import { Confirmations } from "./confirmations";
import { Redis, type RedisOptions } from "ioredis";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { AuditEntry } from "../../shared/protocol";
import type {
  Ban,
  FeedStatusListener,
  FeedSubscription,
  MarkSnapshot,
  NextRefresh,
  RefreshRecord,
  RevocationChange,
  RevocationEvent,
  RotateResult,
  SessionRecord,
  Store,
  UserRecord,
} from "./store";

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RedisStoreOptions {
  url: string;
  /** default "gh:" */
  keyPrefix?: string;
  logger?: StoreLogger;
  /** how long `connect` waits for Redis before giving up; default 10 s */
  connectTimeoutMs?: number;
}

const AUDIT_MAX = 10_000;
const PING_TIMEOUT_MS = 1_000;
const QUIT_TIMEOUT_MS = 1_000;
const SCAN_COUNT = 500;
const EVENT_KINDS = new Set(["session", "user", "unban", "global"]);

const silentLogger: StoreLogger = { warn: () => {}, info: () => {} };

/** Reconnect quickly and forever: the feed must come back as soon as Redis does. */
const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000);

// ---------------------------------------------------------------- Lua scripts

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
 * KEYS: s:<sid>, r:<hash>, us:<uid>, sr:<sid>.
 * ARGV: sid, uid, device, createdAt, lastSeenAt, expiresAt, hash, refresh createdAt, refresh expiresAt.
 */
const CREATE_SESSION = `${EXPIRE_INDEX_FN}
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
return 1`;

/**
 * KEYS: r:<old>, r:<new>. ARGV: prefix, now, new hash, new createdAt, new expiresAt.
 * Returns {'invalid', uid?} | {'reused', uid, sid} | {'ok', sid, uid, device, createdAt, lastSeenAt, expiresAt}.
 */
const ROTATE_REFRESH = `${EXPIRE_INDEX_FN}
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

const scripts = {
  createUser: new LuaScript(CREATE_USER),
  setPassword: new LuaScript(SET_PASSWORD),
  upsertAdmin: new LuaScript(UPSERT_ADMIN),
  createSession: new LuaScript(CREATE_SESSION),
  rotateRefresh: new LuaScript(ROTATE_REFRESH),
  applyRevocation: new LuaScript(APPLY_REVOCATION),
};

// ---------------------------------------------------------------- the store

export class RedisStore implements Store {
  readonly kind = "redis" as const;
  /** open feed subscriptions, closed with the store */
  private readonly feeds = new Set<FeedSubscription>();
  private closed = false;
  private readonly confirmations = new Confirmations();

  private constructor(
    private readonly client: Redis,
    private readonly url: string,
    private readonly p: string,
    private readonly log: StoreLogger,
  ) {}

  /** Resolves once the command client is ready; rejects (REVOCATION_UNAVAILABLE) after connectTimeoutMs. */
  static async connect(opts: RedisStoreOptions): Promise<RedisStore> {
    const log = opts.logger ?? silentLogger;
    const client = new Redis(opts.url, {
      ...baseOptions(),
      // Fail fast while Redis is down: no queueing, no replay of in-flight scripts.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      autoResendUnfulfilledCommands: false,
      connectionName: "gatehouse-store",
    });
    watchErrors(client, log, "store");
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("timed out connecting to Redis")), opts.connectTimeoutMs ?? 10_000);
        client.once("ready", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } catch (err) {
      client.disconnect();
      throw unavailable(err);
    }
    return new RedisStore(client, opts.url, opts.keyPrefix ?? "gh:", log);
  }

  // ---- users ----

  createUser(user: UserRecord): Promise<void> {
    return this.run(async () => {
      const ok = await scripts.createUser.run(this.client, [this.k("un:", user.username.toLowerCase()), this.k("u:", user.id)], [user.id, ...userFields(user)]);
      if (ok !== 1) throw new GatehouseError(ErrorCode.USERNAME_TAKEN);
    });
  }

  getUser(id: string): Promise<UserRecord | null> {
    return this.run(async () => parseUser(await this.client.hgetall(this.k("u:", id))));
  }

  getUserByUsername(username: string): Promise<UserRecord | null> {
    return this.run(async () => {
      const id = await this.client.get(this.k("un:", username.toLowerCase()));
      return id === null ? null : parseUser(await this.client.hgetall(this.k("u:", id)));
    });
  }

  setPasswordHash(userId: string, passwordHash: string): Promise<void> {
    return this.run(async () => {
      await scripts.setPassword.run(this.client, [this.k("u:", userId)], [passwordHash]);
    });
  }

  upsertAdmin(user: UserRecord): Promise<UserRecord> {
    return this.run(async () => {
      const reply = await scripts.upsertAdmin.run(
        this.client,
        [this.k("un:", user.username.toLowerCase())],
        [this.p, user.id, user.passwordHash === null ? "0" : "1", user.passwordHash ?? "", ...userFields({ ...user, role: "admin" })],
      );
      const parsed = parseUser(pairsToObject(reply));
      if (!parsed) throw new Error("upsertAdmin returned no user");
      return parsed;
    });
  }

  // ---- sessions and refresh tokens ----

  createSession(session: SessionRecord, refresh: RefreshRecord): Promise<void> {
    return this.run(async () => {
      await scripts.createSession.run(
        this.client,
        [this.k("s:", session.id), this.k("r:", refresh.hash), this.k("us:", session.userId), this.k("sr:", session.id)],
        [session.id, session.userId, session.device, session.createdAt, session.lastSeenAt, session.expiresAt, refresh.hash, refresh.createdAt, refresh.expiresAt],
      );
    });
  }

  getSession(sessionId: string): Promise<SessionRecord | null> {
    return this.run(async () => parseSession(await this.client.hgetall(this.k("s:", sessionId))));
  }

  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.run(async () => {
      const ids = await this.client.zrangebyscore(this.k("us:", userId), `(${now}`, "+inf");
      if (ids.length === 0) return [];
      const pipe = this.client.pipeline();
      for (const id of ids) pipe.hgetall(this.k("s:", id));
      const out: SessionRecord[] = [];
      for (const [err, h] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        const s = parseSession(h as Record<string, string>);
        if (s && s.expiresAt > now) out.push(s);
      }
      return out.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    });
  }

  rotateRefresh(oldHash: string, next: NextRefresh, now: number): Promise<RotateResult> {
    return this.run(async () => {
      const reply = await scripts.rotateRefresh.run(
        this.client,
        [this.k("r:", oldHash), this.k("r:", next.hash)],
        [this.p, now, next.hash, next.createdAt, next.expiresAt],
      );
      const r = asStrings(reply);
      if (r[0] === "ok") {
        const [, id, userId, device, createdAt, lastSeenAt, expiresAt] = r;
        return {
          status: "ok",
          session: { id: id!, userId: userId!, device: device!, createdAt: Number(createdAt), lastSeenAt: Number(lastSeenAt), expiresAt: Number(expiresAt) },
        };
      }
      if (r[0] === "reused") return { status: "reused", userId: r[1]!, sessionId: r[2]! };
      return r[1] ? { status: "invalid", userId: r[1] } : { status: "invalid" };
    });
  }

  // ---- revocation ----

  applyRevocation(change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): Promise<RevocationEvent> {
    return this.run(async () => {
      const reply = await scripts.applyRevocation.run(this.client, [], revocationArgs(this.p, change, ctx));
      if (!Array.isArray(reply) || typeof reply[0] !== "string") throw new Error("applyRevocation returned no event");
      const event = JSON.parse(reply[0]) as RevocationEvent;
      this.confirmations.expect(event.seq, Number(reply[1]));
      return event;
    });
  }

  currentSeq(): Promise<number> {
    return this.run(async () => Number((await this.client.get(this.k("seq"))) ?? 0));
  }

  loadMarks(now: number): Promise<MarkSnapshot> {
    return this.run(async () => {
      // The epoch names this Redis dataset: created once (NX), so a Redis that came
      // back empty (or was flushed) shows a new one to every node that knew the old.
      await this.client.set(this.k("epoch"), randomBytes(8).toString("hex"), "NX");
      const epoch = (await this.client.get(this.k("epoch"))) ?? "";
      // seq first: every mark written up to it is then in the scan (marks only get newer).
      const seq = Number((await this.client.get(this.k("seq"))) ?? 0);
      const snap: MarkSnapshot = { epoch, seq, jtis: [], sessions: [], users: [], bans: [], global: null };
      const seen = new Set<string>();
      let cursor = "0";
      do {
        const [nextCursor, keys] = await this.client.scan(cursor, "MATCH", `${escapeGlob(this.p)}m:*`, "COUNT", SCAN_COUNT);
        cursor = nextCursor;
        const fresh = keys.filter((k) => !seen.has(k));
        if (fresh.length === 0) continue;
        for (const k of fresh) seen.add(k);
        for (const raw of await this.client.mget(fresh)) if (raw !== null) addMark(snap, raw, now);
      } while (cursor !== "0");
      return snap;
    });
  }

  acknowledge(e: RevocationEvent, nodeId: string): void {
    if (e.nodeId === nodeId) return this.confirmations.confirm(e.seq);
    // Lost with a dropped connection like any publish: the issuer then stops waiting at its timeout.
    this.client.publish(this.k(`acks:${e.nodeId}`), String(e.seq)).catch(() => {});
  }

  confirmApplied(e: RevocationEvent, timeoutMs: number): Promise<number> {
    return this.confirmations.wait(e.seq, timeoutMs);
  }

  subscribe(onEvent: (e: RevocationEvent) => void, status: FeedStatusListener, opts: { nodeId?: string } = {}): FeedSubscription {
    if (this.closed) {
      const ready = Promise.reject(new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE));
      ready.catch(() => {});
      return { ready, close: async () => {} };
    }
    const channel = this.k("revocations");
    const ackChannel = opts.nodeId === undefined ? null : this.k(`acks:${opts.nodeId}`);
    const log = this.log;
    const sub = new Redis(this.url, {
      ...baseOptions(),
      // We subscribe ourselves on every 'ready', so we know when it is acknowledged.
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: null,
      connectionName: "gatehouse-feed",
    });
    watchErrors(sub, log, "feed");

    let resolveReady!: () => void;
    let rejectReady!: (err: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    ready.catch(() => {}); // nobody awaiting it must not mean an unhandled rejection

    let subscribedOnce = false;
    let lost = false;
    let closed = false;
    let attempt = 0;

    const doSubscribe = async (): Promise<void> => {
      const mine = ++attempt;
      try {
        await (ackChannel ? sub.subscribe(channel, ackChannel) : sub.subscribe(channel));
      } catch (err) {
        // The connection dropped again; the next 'ready' retries.
        log.warn({ err: errMessage(err) }, "revocation feed subscribe failed");
        return;
      }
      if (closed || mine !== attempt) return;
      if (!subscribedOnce) {
        subscribedOnce = true;
        resolveReady();
      } else if (lost) {
        lost = false;
        log.info({}, "revocation feed resumed");
        status.onResumed();
      }
    };

    sub.on("ready", () => void doSubscribe());
    sub.on("close", () => {
      if (closed || !subscribedOnce || lost) return;
      lost = true;
      log.warn({}, "revocation feed lost");
      status.onLost();
    });
    sub.on("message", (ch: string, message: string) => {
      if (ch === ackChannel) {
        const seq = Number(message);
        if (Number.isSafeInteger(seq)) this.confirmations.confirm(seq);
        return;
      }
      if (ch !== channel) return;
      const event = parseEvent(message);
      if (!event) {
        log.warn({ bytes: message.length }, "dropped a malformed revocation event");
        return;
      }
      try {
        onEvent(event);
      } catch (err) {
        log.warn({ err: errMessage(err), seq: event.seq }, "revocation event handler failed");
      }
    });

    const feed: FeedSubscription = {
      ready,
      close: async () => {
        if (closed) return;
        closed = true;
        this.feeds.delete(feed);
        if (!subscribedOnce) rejectReady(new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE));
        await quitClient(sub);
      },
    };
    this.feeds.add(feed);
    return feed;
  }

  // ---- audit ----

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.run(async () => {
      const key = this.k("audit");
      const res = await this.client.multi().lpush(key, JSON.stringify(entry)).ltrim(key, 0, AUDIT_MAX - 1).exec();
      const failed = res?.find(([err]) => err);
      if (!res || failed) throw failed?.[0] ?? new Error("audit transaction aborted");
    });
  }

  listAudit(limit: number): Promise<AuditEntry[]> {
    return this.run(async () => {
      if (limit <= 0) return [];
      const raw = await this.client.lrange(this.k("audit"), 0, limit - 1);
      const out: AuditEntry[] = [];
      for (const r of raw) {
        try {
          out.push(JSON.parse(r) as AuditEntry);
        } catch {
          // written only by appendAudit; skip anything else rather than fail the page
        }
      }
      return out;
    });
  }

  async ping(): Promise<boolean> {
    if (this.closed) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("ping timed out")), PING_TIMEOUT_MS);
      });
      return (await Promise.race([this.client.ping(), timeout])) === "PONG";
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.confirmations.clear();
    // Through each subscription's own close, so none reports "lost" on the way out.
    await Promise.all([...this.feeds].map((f) => f.close()));
    await quitClient(this.client);
  }

  // ---- helpers ----

  private k(kind: string, id = ""): string {
    return this.p + kind + id;
  }

  /** Domain errors pass through; any other failure means Redis is unusable right now. */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof GatehouseError) throw err;
      throw unavailable(err);
    }
  }
}

// ---------------------------------------------------------------- helpers

function baseOptions(): RedisOptions {
  return { retryStrategy, lazyConnect: false, enableReadyCheck: true };
}

function unavailable(cause: unknown): GatehouseError {
  const e = new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE);
  e.cause = cause;
  return e;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One warning per outage (ioredis emits an error on every failed reconnect), one info when back. */
function watchErrors(client: Redis, log: StoreLogger, name: string): void {
  let quiet = false;
  client.on("error", (err: Error) => {
    if (quiet) return;
    quiet = true;
    log.warn({ err: err.message, client: name }, "redis client error");
  });
  client.on("ready", () => {
    if (quiet) log.info({ client: name }, "redis client ready again");
    quiet = false;
  });
}

async function quitClient(client: Redis): Promise<void> {
  if (client.status === "end") return;
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.quit(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("quit timed out")), QUIT_TIMEOUT_MS);
      }),
    ]);
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

function userFields(u: UserRecord): (string | number)[] {
  const f: (string | number)[] = [
    "id", u.id,
    "username", u.username,
    "role", u.role,
    "guest", u.guest ? "1" : "0",
    "createdAt", u.createdAt,
    "version", u.version,
    "tokenValidAfter", u.tokenValidAfter,
  ];
  if (u.passwordHash !== null) f.push("passwordHash", u.passwordHash);
  if (u.ban) f.push("ban", JSON.stringify(u.ban));
  return f;
}

function parseUser(h: Record<string, string>): UserRecord | null {
  if (!h.id || !h.username) return null;
  let ban: Ban | null = null;
  if (h.ban) {
    try {
      ban = JSON.parse(h.ban) as Ban;
    } catch {
      ban = null;
    }
  }
  return {
    id: h.id,
    username: h.username,
    role: h.role === "admin" ? "admin" : "player",
    passwordHash: h.passwordHash ?? null,
    guest: h.guest === "1",
    createdAt: Number(h.createdAt ?? 0),
    version: Number(h.version ?? 0),
    tokenValidAfter: Number(h.tokenValidAfter ?? 0),
    ban,
  };
}

function parseSession(h: Record<string, string>): SessionRecord | null {
  if (!h.id || !h.userId) return null;
  return {
    id: h.id,
    userId: h.userId,
    device: h.device ?? "",
    createdAt: Number(h.createdAt),
    lastSeenAt: Number(h.lastSeenAt),
    expiresAt: Number(h.expiresAt),
  };
}

function pairsToObject(reply: unknown): Record<string, string> {
  const a = asStrings(reply);
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]!] = a[i + 1]!;
  return o;
}

/** A Lua array reply as strings (nil entries become undefined). */
function asStrings(reply: unknown): (string | undefined)[] {
  if (!Array.isArray(reply)) throw new Error("unexpected script reply");
  return reply.map((v: unknown) => (v === null || v === undefined ? undefined : String(v)));
}

/** Script arguments for APPLY_REVOCATION; all JSON is built here so numbers keep their precision. */
function revocationArgs(p: string, change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): (string | number)[] {
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

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const optStr = (v: unknown): string | undefined => (isStr(v) ? v : undefined);

/** Adds one stored mark (JSON) to the snapshot if well-formed and alive at `now`. */
function addMark(snap: MarkSnapshot, raw: string, now: number): void {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return;
  }
  if (!m || typeof m !== "object" || !isNum(m.expiresAt) || m.expiresAt <= now) return;
  const expiresAt = m.expiresAt;
  const reason = optStr(m.reason);
  switch (m.t) {
    case "j":
      if (isStr(m.jti)) snap.jtis.push({ jti: m.jti, expiresAt, reason });
      break;
    case "s":
      if (isStr(m.sessionId)) snap.sessions.push({ sessionId: m.sessionId, expiresAt, reason });
      break;
    case "u":
      if (isStr(m.userId) && isNum(m.version) && isNum(m.tokenValidAfter)) {
        snap.users.push({ userId: m.userId, version: m.version, tokenValidAfter: m.tokenValidAfter, expiresAt, reason });
      }
      break;
    case "b":
      if (isStr(m.userId) && (m.until === null || isNum(m.until))) snap.bans.push({ userId: m.userId, until: m.until, expiresAt });
      break;
    case "g":
      if (isNum(m.tokenValidAfter)) snap.global = { tokenValidAfter: m.tokenValidAfter, expiresAt };
      break;
  }
}

/** Validates a feed message; null for anything that is not a RevocationEvent. */
function parseEvent(message: string): RevocationEvent | null {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(message) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!e || typeof e !== "object") return null;
  const ok =
    isNum(e.seq) &&
    isStr(e.kind) &&
    EVENT_KINDS.has(e.kind) &&
    isStr(e.reason) &&
    isNum(e.at) &&
    isNum(e.expiresAt) &&
    isStr(e.nodeId) &&
    (e.userId === undefined || isStr(e.userId)) &&
    (e.sessionId === undefined || isStr(e.sessionId)) &&
    (e.jti === undefined || isStr(e.jti)) &&
    (e.tokenValidAfter === undefined || isNum(e.tokenValidAfter)) &&
    (e.version === undefined || isNum(e.version)) &&
    (e.note === undefined || isStr(e.note));
  return ok ? (e as unknown as RevocationEvent) : null;
}
