/**
 * RedisStore: the Store for cluster mode, on one Redis (not Redis Cluster: the
 * Lua scripts build some key names from the prefix inside the script, which
 * Cluster's slot routing forbids).
 *
 * Keys (P = keyPrefix, default "gh:"; ioredis' own keyPrefix is not used
 * because it applies neither to SCAN patterns nor to names built in Lua):
 *   P u:<id>        HASH  user record (passwordHash / ban fields absent = null; ban is JSON)
 *   P un:<name>     STR   lower-cased username -> user id
 *   P names         ZSET  lower-cased usernames of registered accounts (not guests: theirs
 *                         expire with their sessions, so the index would outlive them), all
 *                         scored 0 for ZRANGEBYLEX prefix search
 *   P names:built   STR   set once the names index covers accounts created before it existed
 *   P s:<sid>       HASH  session record + its refresh chain, PEXPIREAT expiresAt:
 *                         state live|revoked (a revoked one stays as a tombstone),
 *                         gen (the global generation at creation), cur (SHA-256 of
 *                         the live refresh token), prev / prevAt / prevSealed (the
 *                         one rotated last, when, and its successor sealed with it:
 *                         REFRESH_REUSE_GRACE), trail (older rotated hashes, at
 *                         most REFRESH_TRAIL in all: one key per session, however
 *                         often it refreshes)
 *   P us:<uid>      ZSET  the user's live session ids, scored by expiresAt
 *   P m:<t>:<id>    STR   revocation mark (JSON incl. expiresAt), PXAT expiresAt
 *   P g:gen         STR   global refresh generation, bumped by revoke-all: a session
 *                         created under an older one cannot refresh. No TTL: one key.
 *   P seq           STR   revocation sequence counter
 *   P epoch         STR   random id of this dataset, set once (a Redis that lost its data gets a new one)
 *   P audit         LIST  newest first, capped
 *   channel P revocations: RevocationEvent JSON
 *   channel P acks:<nodeId>: "<seq>", a node has applied one of <nodeId>'s events
 *
 * Times that cut tokens off (revocation cutoffs, the `at` tokens are issued
 * from) come from Redis TIME inside the scripts, so nodes with skewed clocks
 * agree; record expiries use the caller's `now`.
 *
 * Every Redis failure surfaces as GatehouseError(REVOCATION_UNAVAILABLE) (503);
 * the command client does not queue or resend, so calls fail fast in an outage.
 */
import { randomBytes } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { AuditEntry } from "../../shared/protocol";
import { Confirmations } from "./confirmations";
import { addMark, asStrings, pairsToObject, parseAck, parseEvent, parseSession, parseUser, userFields } from "./redis-codec";
import { revocationArgs, scripts } from "./redis-scripts";
import {
  REFRESH_TRAIL,
  type CreateSessionResult,
  type FeedStatusListener,
  type FeedSubscription,
  type MarkSnapshot,
  type Marks,
  type NewSession,
  type RevocationChange,
  type RevocationEvent,
  type RotateResult,
  type Rotation,
  type SessionRecord,
  type Store,
  type TokenBasis,
  type UserRecord,
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
const SUBSCRIBE_RETRY_MS = 500;
/** The longest a store call waits for Redis; then it fails as 503 REVOCATION_UNAVAILABLE. */
export const COMMAND_TIMEOUT_MS = 2_000;

const silentLogger: StoreLogger = { warn: () => {}, info: () => {} };

/** Reconnect quickly and forever: the feed must come back as soon as Redis does. */
const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000);

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
      // A hung Redis keeps its connections open: without a timeout, calls would wait forever.
      commandTimeout: COMMAND_TIMEOUT_MS,
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
    const store = new RedisStore(client, opts.url, opts.keyPrefix ?? "gh:", log);
    try {
      await store.run(() => store.indexExistingNames());
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return store;
  }

  /**
   * Accounts created before the names index existed (a Redis kept from an earlier version) are
   * added to it once. Idempotent: nodes starting together, or a create meanwhile, only repeat ZADDs.
   */
  private async indexExistingNames(): Promise<void> {
    if (await this.client.exists(this.k("names:built"))) return;
    const prefix = this.k("un:");
    let cursor = "0";
    do {
      const [next, keys] = await this.client.scan(cursor, "MATCH", `${escapeGlob(prefix)}*`, "COUNT", SCAN_COUNT);
      cursor = next;
      if (keys.length === 0) continue;
      const ids = await this.client.mget(keys);
      const pipe = this.client.pipeline();
      for (const id of ids) pipe.hget(this.k("u:", id ?? ""), "guest");
      const guest = (await pipe.exec()) ?? [];
      const add: (string | number)[] = [];
      keys.forEach((key, i) => {
        // guests stay out (see the key layout); a name whose user is gone has no "guest" field at all
        const flag = guest[i]?.[1];
        if (ids[i] !== null && flag === "0") add.push(0, key.slice(prefix.length));
      });
      if (add.length > 0) await this.client.zadd(this.k("names"), ...add);
    } while (cursor !== "0");
    await this.client.set(this.k("names:built"), "1");
  }

  // ---- users ----

  createUser(user: UserRecord): Promise<void> {
    return this.run(async () => {
      const name = user.username.toLowerCase();
      const ok = await scripts.createUser.run(
        this.client,
        [this.k("un:", name), this.k("u:", user.id), this.k("names")],
        [user.id, user.guest ? "0" : "1", name, ...userFields(user)],
      );
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

  searchUsers(prefix: string, limit: number): Promise<UserRecord[]> {
    return this.run(async () => {
      // Usernames are [a-z0-9_-] once lower-cased: every name with the prefix sorts below prefix + "\xff".
      const p = prefix.toLowerCase();
      const names = await this.client.zrangebylex(this.k("names"), `[${p}`, `[${p}\xff`, "LIMIT", 0, limit);
      if (names.length === 0) return [];
      const ids = await this.client.mget(names.map((n) => this.k("un:", n)));
      const pipe = this.client.pipeline();
      for (const id of ids) pipe.hgetall(this.k("u:", id ?? ""));
      const out: UserRecord[] = [];
      for (const [err, h] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        const u = parseUser(h as Record<string, string>);
        if (u) out.push(u);
      }
      return out;
    });
  }

  upsertAdmin(user: UserRecord): Promise<UserRecord> {
    return this.run(async () => {
      const reply = await scripts.upsertAdmin.run(
        this.client,
        [this.k("un:", user.username.toLowerCase()), this.k("names")],
        [this.p, user.id, user.passwordHash === null ? "0" : "1", user.passwordHash ?? "", user.username.toLowerCase(), ...userFields({ ...user, role: "admin" })],
      );
      if (reply === 0) throw new GatehouseError(ErrorCode.USERNAME_TAKEN, "That username belongs to a player account.");
      const parsed = parseUser(pairsToObject(reply));
      if (!parsed) throw new Error("upsertAdmin returned no user");
      return parsed;
    });
  }

  // ---- sessions and refresh tokens ----

  createSession(ns: NewSession, expectVersion: number): Promise<CreateSessionResult> {
    return this.run(async () => {
      const r = asStrings(
        await scripts.createSession.run(
          this.client,
          [this.k("s:", ns.id), this.k("us:", ns.userId), this.k("u:", ns.userId), this.k("m:g"), this.k("g:gen")],
          [this.p, ns.id, ns.userId, ns.device, ns.now, ns.expiresAt, ns.refreshHash, expectVersion],
        ),
      );
      if (r[0] !== "ok") return { status: "stale" };
      const session: SessionRecord = { id: ns.id, userId: ns.userId, device: ns.device, createdAt: ns.now, lastSeenAt: ns.now, expiresAt: ns.expiresAt };
      return { status: "ok", session, basis: basisOf(r.slice(1)) };
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

  rotateRefresh(sessionId: string, rot: Rotation): Promise<RotateResult> {
    return this.run(async () => {
      // The trail is matched by substring in Lua: only whole 64-hex digests may reach it.
      if (!SHA256_HEX.test(rot.presentedHash) || !SHA256_HEX.test(rot.nextHash)) return { status: "invalid" };
      const r = asStrings(
        await scripts.rotateRefresh.run(
          this.client,
          [this.k("s:", sessionId), this.k("m:g"), this.k("g:gen")],
          [this.p, rot.presentedHash, rot.nextHash, rot.nextSealed, rot.now, rot.expiresAt, rot.graceMs, REFRESH_TRAIL, sessionId],
        ),
      );
      const [status, a1] = r;
      if (status === "ok" || status === "grace") {
        const [, userId, device, createdAt, lastSeenAt, expiresAt] = r;
        const session: SessionRecord = { id: sessionId, userId: userId!, device: device ?? "", createdAt: Number(createdAt), lastSeenAt: Number(lastSeenAt), expiresAt: Number(expiresAt) };
        const basis = basisOf(r.slice(6, 11));
        return status === "ok" ? { status, session, basis } : { status, session, basis, nextSealed: r[11] ?? "" };
      }
      if (status === "banned") return { status, userId: a1! };
      if (status === "reused") return { status, userId: a1!, sessionId };
      return a1 ? { status: "invalid", userId: a1 } : { status: "invalid" };
    });
  }

  // ---- revocation ----

  applyRevocation(change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): Promise<RevocationEvent> {
    return this.run(async () => {
      const reply = await scripts.applyRevocation.run(this.client, [], revocationArgs(this.p, change, ctx)).catch((err: unknown) => {
        if (err instanceof Error && err.message.includes("STALE_PASSWORD")) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
        throw err;
      });
      if (!Array.isArray(reply) || typeof reply[0] !== "string") throw new Error("applyRevocation returned no event");
      const event = JSON.parse(reply[0]) as RevocationEvent;
      this.confirmations.expect(event.seq, Number(reply[1]));
      return event;
    });
  }

  currentSeq(): Promise<number> {
    return this.run(async () => Number((await this.client.get(this.k("seq"))) ?? 0));
  }

  loadMarksFor(keys: { userId: string; sessionId: string; jti: string }, now: number): Promise<Marks> {
    return this.run(async () => {
      const marks: Marks = { jtis: [], sessions: [], users: [], bans: [], global: null };
      const names = [this.k("m:j:", keys.jti), this.k("m:s:", keys.sessionId), this.k("m:u:", keys.userId), this.k("m:b:", keys.userId), this.k("m:g")];
      for (const raw of await this.client.mget(names)) if (raw !== null) addMark(marks, raw, now);
      return marks;
    });
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
        log.warn({ err: errMessage(err) }, "revocation feed subscribe failed");
        // A dropped connection retries on its next 'ready'; a refusal on a live one (an ACL
        // without SUBSCRIBE, say) would never get one, so retry it here.
        if (!closed && mine === attempt && sub.status === "ready") {
          setTimeout(() => void (!closed && mine === attempt && sub.status === "ready" && doSubscribe()), SUBSCRIBE_RETRY_MS).unref();
        }
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
        const seq = parseAck(message);
        if (seq !== null) this.confirmations.confirm(seq);
        else {
          log.warn({ bytes: message.length }, "dropped a malformed revocation confirmation");
          status.onRejected?.();
        }
        return;
      }
      if (ch !== channel) return;
      const event = parseEvent(message);
      if (!event) {
        // Never its content: it is untrusted and may be huge.
        log.warn({ bytes: message.length }, "dropped a malformed revocation event");
        status.onRejected?.();
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

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** username, role, version, notBeforeIat, at: as the scripts' BASIS_FN returns them. */
function basisOf(r: (string | undefined)[]): TokenBasis {
  const [username, role, version, notBeforeIat, at] = r;
  return { username: username ?? "", role: role === "admin" ? "admin" : "player", version: Number(version), notBeforeIat: Number(notBeforeIat), at: Number(at) };
}

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
