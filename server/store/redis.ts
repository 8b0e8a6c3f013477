/**
 * RedisStore: the Store on Redis, one primary (`url`) or a Redis Cluster (`clusterNodes`), with
 * ONE code path: the same keys, scripts and call sequence on both; only the ioredis client differs
 * (see redis-topology.ts). Every script touches one slot and declares all its keys.
 *
 * Redis key layout (P = keyPrefix, default "gh:"; ioredis' own keyPrefix is not used because it
 * applies neither to SCAN patterns nor to the feed's channels). {..} is the hash tag: the keys of
 * one user share the slot of {<userId>}; the global state and the feed share the slot of {g}.
 *
 *   slot {<uid>}: one user
 *   P u:{<uid>}           HASH  user record (passwordHash / ban absent = null; ban is JSON; revokedAt =
 *                               the {g} time of the last user revocation, see sessionStep)
 *   P us:{<uid>}          ZSET  the user's live session ids, scored by expiresAt
 *   P s:{<uid>}:<sid>     HASH  session + its refresh chain, PEXPIREAT expiresAt: state live|revoked
 *                               (a revoked one stays as a tombstone), ver (the user's version at its
 *                               creation: a user revocation since stops its refresh), gen (the global
 *                               generation at creation), cur (SHA-256 of the live refresh token),
 *                               prev / prevAt / prevSealed (the one rotated last, when, its successor
 *                               sealed with it: REFRESH_REUSE_GRACE), trail (older rotated hashes, at
 *                               most REFRESH_TRAIL in all). A sid is "<uid>.<random>": its slot is known
 *                               from the sid alone.
 *   P m:u:{<uid>}         STR   user mark (JSON incl. expiresAt), PXAT expiresAt
 *   P m:b:{<uid>}         STR   ban mark
 *   P m:s:{<uid>}:<sid>   STR   session mark
 *   P m:j:{<uid>}:<jti>   STR   access-token (jti) mark
 *   slot {g}: global state and the feed
 *   P gen:{g}             STR   global refresh generation, bumped by revoke-all (no TTL: one key)
 *   P m:g:{g}             STR   global mark (the revoke-all cutoff), PXAT expiresAt
 *   P ucut:{g}            STR   the latest user revocation's cutoff, until its second is over
 *   P seq:{g}             STR   revocation sequence counter
 *   P epoch:{g}           STR   random id of this dataset, set once (a Redis that lost its data gets a new one)
 *   channel P revocations:{g}      (sharded) RevocationEvent JSON
 *   channel P acks:{g}:<nodeId>    (sharded) "<seq>": a node has applied one of <nodeId>'s events
 *   their own slots, one key per call
 *   P un:<name>           STR   lower-cased username -> "<uid> <claimedAtMs>" (see redis-users.ts)
 *   P names               ZSET  lower-cased usernames of registered accounts (not guests), scored 0
 *                               for ZRANGEBYLEX prefix search
 *   P names:built         STR   set once the names index covers accounts created before it existed
 *   P audit               LIST  newest first, capped
 *   P layout:2            STR   set once a dataset of the layout before this one was brought over (redis-legacy.ts)
 *
 * Times that cut tokens off (revocation cutoffs, the `at` tokens are issued from) are Redis TIME
 * of the {g} primary (a session's mark expiries: its user's primary), so nodes with skewed clocks
 * agree; record expiries use the caller's `now`. Revocation writes wait for a replica where the
 * primary has one (contract section 5 "Failover").
 *
 * The revocation events this store publishes (from inside its scripts) are received by the
 * RedisFeed beside it (redis-feed.ts, built with `RedisFeed.for(store)`), which rides on this
 * store's connections and closes before them.
 *
 * Every Redis failure surfaces as GatehouseError(REVOCATION_UNAVAILABLE) (503);
 * the command client does not queue or resend, so calls fail fast in an outage.
 */
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { AuditEntry } from "../../shared/protocol";
import { Confirmations } from "./confirmations";
import type { RevocationFeed } from "./feed";
import { errMessage, quitClient, type FeedBase, type StoreLogger } from "./redis-feed";
import { Keys } from "./redis-keys";
import { migrateLegacyLayout } from "./redis-legacy";
import { RedisRevocations } from "./redis-revocation";
import { RedisSessions } from "./redis-sessions";
import { clusterOptions, optionsFromUrl, Topology, type RedisClient } from "./redis-topology";
import { RedisUsers } from "./redis-users";
import {
  type CreateSessionResult,
  type MarkSnapshot,
  type Marks,
  type NewSession,
  type RevocationChange,
  type RevocationEvent,
  type RotateResult,
  type Rotation,
  type SessionRecord,
  type Store,
  type UserRecord,
} from "./store";

export type { StoreLogger } from "./redis-feed";

export interface RedisStoreOptions {
  /** one Redis primary; exactly one of `url` and `clusterNodes` */
  url?: string;
  /** seed URLs of a Redis Cluster (>= 7.0) */
  clusterNodes?: string[];
  /** default "gh:" */
  keyPrefix?: string;
  logger?: StoreLogger;
  /** how long `connect` waits for Redis before giving up; default 10 s */
  connectTimeoutMs?: number;
}

const AUDIT_MAX = 10_000;
const PING_TIMEOUT_MS = 1_000;
/** The longest a store call waits for Redis; then it fails as 503 REVOCATION_UNAVAILABLE. */
export const COMMAND_TIMEOUT_MS = 2_000;

const silentLogger: StoreLogger = { warn: () => {}, info: () => {} };

/** Reconnect quickly and forever: the store must come back as soon as Redis does. */
const retryStrategy = (attempt: number): number => Math.min(attempt * 100, 1000);

export class RedisStore implements Store {
  readonly kind = "redis" as const;
  /** the feeds riding on this store's connections (RedisFeed.for), closed before them */
  private readonly feeds = new Set<RevocationFeed>();
  private closed = false;
  /** how many subscribers each of this store's publishes reached, for the feed's acknowledgements */
  private readonly confirmations = new Confirmations();
  private readonly users: RedisUsers;
  private readonly revocations: RedisRevocations;
  private readonly sessions: RedisSessions;

  private constructor(
    private readonly t: Topology,
    private readonly k: Keys,
    private readonly log: StoreLogger,
  ) {
    this.users = new RedisUsers(t, k);
    this.revocations = new RedisRevocations(t, k);
    this.sessions = new RedisSessions(t, k, this.users);
  }

  private get client(): RedisClient {
    return this.t.client;
  }

  /** Resolves once the command client is ready; rejects (REVOCATION_UNAVAILABLE) after connectTimeoutMs. */
  static async connect(opts: RedisStoreOptions): Promise<RedisStore> {
    const seeds = opts.clusterNodes ?? [];
    if ((opts.url === undefined) === (seeds.length === 0)) throw new Error("RedisStore.connect needs exactly one of url and clusterNodes");
    const log = opts.logger ?? silentLogger;
    const k = new Keys(opts.keyPrefix ?? "gh:");
    const common: RedisOptions = {
      retryStrategy,
      enableReadyCheck: true,
      // Fail fast while Redis is down: no queueing, no replay of in-flight scripts.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      autoResendUnfulfilledCommands: false,
      // A hung Redis keeps its connections open: without a timeout, calls would wait forever.
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectionName: "gatehouse-store",
    };
    let t: Topology;
    if (opts.url !== undefined) {
      t = new Topology(new Redis(opts.url, common), optionsFromUrl(opts.url));
    } else {
      // Credentials and TLS of the first seed apply to every node the cluster reports.
      const parsed = seeds.map(optionsFromUrl);
      const { host: _h, port: _p, db: _db, ...auth } = parsed[0]!;
      const cluster = new Cluster(
        parsed.map((s) => ({ host: s.host, port: s.port })),
        clusterOptions({ ...common, ...auth }),
      );
      t = new Topology(cluster, auth);
    }
    const client = t.client;
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
    const store = new RedisStore(t, k, log);
    try {
      await store.run(() => t.detectPubSub());
      if (t.client instanceof Redis) await store.run(() => migrateLegacyLayout(t.client as Redis, k));
      await store.run(() => store.users.indexExistingNames());
    } catch (err) {
      client.disconnect();
      throw err;
    }
    return store;
  }

  // ---- users ----

  createUser(user: UserRecord): Promise<void> {
    return this.run(() => this.users.create(user));
  }

  getUser(id: string): Promise<UserRecord | null> {
    return this.run(() => this.users.get(id));
  }

  getUserByUsername(username: string): Promise<UserRecord | null> {
    return this.run(() => this.users.byName(username));
  }

  searchUsers(prefix: string, limit: number): Promise<UserRecord[]> {
    return this.run(() => this.users.search(prefix, limit));
  }

  upsertAdmin(user: UserRecord): Promise<UserRecord> {
    return this.run(() => this.users.upsertAdmin(user));
  }

  // ---- sessions and refresh tokens ----

  createSession(ns: NewSession, expectVersion: number): Promise<CreateSessionResult> {
    return this.run(() => this.sessions.create(ns, expectVersion));
  }

  getSession(sessionId: string): Promise<SessionRecord | null> {
    return this.run(() => this.sessions.get(sessionId));
  }

  listSessions(userId: string, now: number): Promise<SessionRecord[]> {
    return this.run(() => this.sessions.list(userId, now));
  }

  rotateRefresh(sessionId: string, rot: Rotation): Promise<RotateResult> {
    return this.run(() => this.sessions.rotate(sessionId, rot));
  }

  // ---- revocation ----

  applyRevocation(change: RevocationChange, ctx: { now: number; markTtlMs: number; nodeId: string }): Promise<RevocationEvent> {
    return this.run(async () => {
      const { event, receivers } = await this.revocations.apply(change, ctx);
      this.confirmations.expect(event.seq, receivers);
      return event;
    });
  }

  loadMarksFor(keys: { userId: string; sessionId: string; jti: string }, now: number): Promise<Marks> {
    return this.run(() => this.revocations.loadMarksFor(keys, now));
  }

  loadMarks(now: number): Promise<MarkSnapshot> {
    return this.run(() => this.revocations.loadMarks(now));
  }

  /** What RedisFeed.for(store) builds on; not for other callers. */
  feedBase(): FeedBase {
    return {
      topology: this.t,
      keys: this.k,
      log: this.log,
      confirmations: this.confirmations,
      currentSeq: () => this.run(() => this.revocations.currentSeq()),
      attach: (feed) => {
        if (this.closed) void feed.close();
        else this.feeds.add(feed);
      },
    };
  }

  // ---- audit ----

  appendAudit(entry: AuditEntry): Promise<void> {
    return this.run(async () => {
      const key = this.k.audit;
      const res = await this.client.multi().lpush(key, JSON.stringify(entry)).ltrim(key, 0, AUDIT_MAX - 1).exec();
      const failed = res?.find(([err]) => err);
      if (!res || failed) throw failed?.[0] ?? new Error("audit transaction aborted");
    });
  }

  listAudit(limit: number): Promise<AuditEntry[]> {
    return this.run(async () => {
      if (limit <= 0) return [];
      const raw = await this.client.lrange(this.k.audit, 0, limit - 1);
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
      // on a cluster: the primary of {g}, without which no revocation can be published
      const ping = this.t.isCluster ? this.t.nodeFor(this.k.seq).node.ping() : this.client.ping();
      return (await Promise.race([ping, timeout])) === "PONG";
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The feeds' subscribers first: they ride on this store's topology.
    await Promise.all([...this.feeds].map((f) => f.close()));
    this.confirmations.clear();
    this.t.close();
    await quitClient(this.client);
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

function unavailable(cause: unknown): GatehouseError {
  const e = new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE);
  e.cause = cause;
  return e;
}

/** One warning per outage (ioredis emits an error on every failed reconnect), one info when back. */
function watchErrors(client: RedisClient, log: StoreLogger, name: string): void {
  let quiet = false;
  client.on("error", (err: Error) => {
    if (quiet) return;
    quiet = true;
    log.warn({ err: errMessage(err), client: name }, "redis client error");
  });
  client.on("ready", () => {
    if (quiet) log.info({ client: name }, "redis client ready again");
    quiet = false;
  });
}
