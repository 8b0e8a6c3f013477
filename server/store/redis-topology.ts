/**
 * The one place that knows whether the store talks to one Redis primary or to a Redis Cluster.
 * Everything else issues the same calls on both: single-slot commands and scripts through
 * `client` (ioredis routes them), and the few calls that must reach one node's own connection
 * (a revocation's write + WAIT, a SCAN of every primary) through `nodeFor` / `primaries`.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { keySlot } from "./redis-keys";

export type RedisClient = Redis | Cluster;

/** How long a revocation waits for a replica to hold its write before answering 503. */
export const WAIT_REPLICA_MS = 1_000;
/** a revocation write plus its WAIT, queued behind at most a couple of others on its connection */
const WRITER_COMMAND_TIMEOUT_MS = 2_000 + WAIT_REPLICA_MS;
/** revocation connections kept open per primary once a burst is over */
const IDLE_WRITERS_PER_PRIMARY = 4;
/** Single primary: how old the cached replica count may get before it is read again. */
const REPLICATION_INFO_MAX_AGE_MS = 5_000;
const TOPOLOGY_RETRIES = 20;
const TOPOLOGY_RETRY_MS = 100;
/** a revocation meeting a slot on the move tries again this often, TOPOLOGY_RETRY_MS apart */
const MOVING_SLOT_ATTEMPTS = 10;

export interface ScriptLike {
  run(client: RedisClient, keys: string[], args: (string | number)[]): Promise<unknown>;
}

/** Sharded pub/sub (Redis >= 7, and always on a cluster), or classic pub/sub on a 6.2 primary. */
export interface PubSubCommands {
  publish: "SPUBLISH" | "PUBLISH";
  subscribe: "ssubscribe" | "subscribe";
  message: "smessage" | "message";
}
const SHARDED: PubSubCommands = { publish: "SPUBLISH", subscribe: "ssubscribe", message: "smessage" };
const CLASSIC: PubSubCommands = { publish: "PUBLISH", subscribe: "subscribe", message: "message" };

export class Topology {
  /** set by detectPubSub() at connect */
  pubsub: PubSubCommands = SHARDED;

  /**
   * Primaries (host:port) seen with a replica: from then on each revocation written there must
   * reach one, even after the replica vanished from the topology (a frozen or failed replica is
   * dropped from CLUSTER SLOTS; writing without it would let a later failover lose a 2xx).
   */
  private readonly replicated = new Set<string>();
  /** per primary (id), idle connections revocations are written and WAITed on */
  private readonly writers = new Map<string, Redis[]>();
  private closed = false;
  /** when each primary's INFO replication was last read */
  private readonly replicationRead = new Map<string, { at: number; read: Promise<void> }>();

  constructor(
    readonly client: RedisClient,
    /** seed URLs in cluster mode, to open plain connections to one node (the feed's subscriber) */
    readonly nodeOptions: RedisOptions,
  ) {
    // Whoever read the slot map again (ioredis itself after a MOVED, or refreshSlots): the idle
    // writers of a node that is no longer a primary are closed (after a failover they stayed open
    // to the demoted node, one pool per failover).
    if (client instanceof Cluster) client.on("refresh", () => this.dropWritersOfNonPrimaries(client));
  }

  private dropWritersOfNonPrimaries(c: Cluster): void {
    const primaries = new Set(c.nodes("master").map((n) => nodeKey(n.options)));
    for (const [id, idle] of this.writers) {
      if (primaries.has(id)) continue;
      for (const w of idle) w.disconnect();
      this.writers.delete(id);
    }
  }

  /** The one difference a Redis 6.2 primary makes: it has no sharded pub/sub, so the feed uses the classic one. */
  async detectPubSub(): Promise<void> {
    if (this.isCluster) return;
    const info = String(await (this.client as Redis).info("server"));
    const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 7);
    this.pubsub = major >= 7 ? SHARDED : CLASSIC;
  }

  get isCluster(): boolean {
    return this.client instanceof Cluster;
  }

  /** The connection to the primary that serves `key`'s slot (the client itself on a single primary). */
  nodeFor(key: string): { node: Redis; id: string } {
    const c = this.client;
    if (!(c instanceof Cluster)) return { node: c, id: "single" };
    // a primary's id is its address: after a failover the new primary is another id, judged afresh
    const id = c.slots[keySlot(key)]?.[0];
    const node = id === undefined ? undefined : c.nodes("master").find((n) => nodeKey(n.options) === id);
    if (!node || id === undefined) {
      c.refreshSlotsCache();
      throw new Error(`no known primary for the slot of ${key}`);
    }
    if ((c.slots[keySlot(key)]?.length ?? 0) > 1) this.replicated.add(id);
    return { node, id };
  }

  /**
   * The connections revocations are written and WAITed on: per primary, apart from the shared
   * command connection, and one per revocation in flight. WAIT blocks its connection: on the
   * shared one a replica that stopped answering stalled every command to that primary (logins, an
   * admin's checks) behind a second per queued revocation; on one writer per primary the third of
   * three concurrent revocations timed out behind two WAITs after its write had run, leaving its
   * marks unannounced (both found by test/cluster/failover).
   */
  private async withWriter<T>(id: string, node: Redis, fn: (writer: Redis) => Promise<T>): Promise<T> {
    const idle = this.writers.get(id) ?? [];
    this.writers.set(id, idle);
    let writer = idle.pop();
    while (writer && writer.status !== "ready") {
      writer.disconnect();
      writer = idle.pop();
    }
    writer ??= new Redis({
      ...node.options,
      connectionName: "gatehouse-revocations",
      // queued until this new connection is up, then bounded by the timeout like every call
      enableOfflineQueue: true,
      commandTimeout: WRITER_COMMAND_TIMEOUT_MS,
      // never reconnects (a cluster's node options say so too): a dropped writer is replaced
      retryStrategy: () => null,
    }).on("error", () => undefined); // reported by the calls that fail
    try {
      return await fn(writer);
    } finally {
      // Only a healthy one goes back: a closed one answered "Connection is closed." forever after a
      // Redis restart (found by test/cluster/redis-restart). Nor to a pool dropped meanwhile (its
      // node is no longer a primary: see the constructor).
      if (writer.status === "ready" && idle.length < IDLE_WRITERS_PER_PRIMARY && !this.closed && this.writers.get(id) === idle) idle.push(writer);
      else writer.disconnect();
    }
  }

  /** Closes the revocation writers (the shared client is the store's to close). */
  close(): void {
    this.closed = true;
    for (const idle of this.writers.values()) for (const w of idle) w.disconnect();
    this.writers.clear();
  }

  /** Every primary's connection (one on a single primary). */
  primaries(): Redis[] {
    const c = this.client;
    return c instanceof Cluster ? c.nodes("master") : [c];
  }

  /**
   * Runs `script` on the primary of keys[0]'s slot and, if that primary has (had) replicas, WAITs
   * on the same connection until one holds the write: else GatehouseError(REVOCATION_UNAVAILABLE),
   * the write possibly applied but not promised (revocations are idempotent: the caller retries).
   * A slot that moved (MOVED) is looked up again; one that is moving (ASK, TRYAGAIN: its keys
   * are split between two primaries for a moment) is tried again until the move is over, for
   * about a second.
   */
  async writeDurably(script: ScriptLike, keys: string[], args: (string | number)[]): Promise<unknown> {
    const { reply, replicated } = await this.write(script, keys, args);
    if (!replicated) throw notReplicated();
    return reply;
  }

  /** writeDurably's write and WAIT, reporting instead of throwing when no replica acknowledged in time. */
  async write(script: ScriptLike, keys: string[], args: (string | number)[]): Promise<{ reply: unknown; replicated: boolean }> {
    for (let attempt = 0; ; attempt++) {
      const { node: shared, id } = this.nodeFor(keys[0]!);
      let outcome: { reply: unknown; replicated: boolean } | "moved";
      try {
        outcome = await this.withWriter(id, shared, async (node) => {
          let reply: unknown;
          try {
            reply = await script.run(node, keys, args);
          } catch (err) {
            const redirect = this.isCluster && err instanceof Error ? /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/.exec(err.message)?.[1] : undefined;
            if (redirect && attempt < MOVING_SLOT_ATTEMPTS) {
              if (redirect !== "MOVED") await new Promise((r) => setTimeout(r, TOPOLOGY_RETRY_MS));
              await this.refreshSlots();
              return "moved" as const;
            }
            throw err;
          }
          // The write ran: a WAIT that fails or times out means "not known to be replicated", not
          // an error, so the caller still announces what it wrote.
          const replicated =
            !(await this.needsWait(node, id)) || (await node.call("WAIT", "1", String(WAIT_REPLICA_MS)).then((n) => Number(n) >= 1, () => false));
          return { reply, replicated };
        });
      } catch (err) {
        // a primary that does not answer may have been failed over: the next call looks again
        if (!(err instanceof Error && err.name === "ReplyError")) void this.refreshSlots();
        throw err;
      }
      if (outcome === "moved") continue;
      const { reply, replicated } = outcome;
      return { reply, replicated };
    }
  }

  /**
   * A fingerprint of which primary serves which slots, and of any slot migration under way, read
   * from the servers themselves: equal before and after a scan of every primary means no key moved
   * between primaries during it. On a single primary, constant.
   */
  async layout(): Promise<{ id: string; migrating: boolean }> {
    if (!this.isCluster) return { id: "single", migrating: false };
    const lines = await Promise.all(
      this.primaries().map(async (n) => {
        const nodes = String(await n.call("CLUSTER", "NODES"));
        return nodes.split("\n").find((l) => l.includes("myself")) ?? "";
      }),
    );
    const mine = lines.map((l) => l.split(" ")).map((f) => `${f[0]} ${f[2]} ${f.slice(8).join(" ")}`);
    const id = mine.sort().join("\n");
    return { id, migrating: /\[\d+-[<>]-/.test(id) };
  }

  /** Runs `fn` (a scan of every primary) until the slot layout was the same before and after it. */
  async stableScan<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < TOPOLOGY_RETRIES; attempt++) {
      const before = await this.layout();
      if (!before.migrating) {
        const out = await fn();
        const after = await this.layout();
        if (after.id === before.id) return out;
      }
      await this.refreshSlots();
      await new Promise((r) => setTimeout(r, TOPOLOGY_RETRY_MS));
    }
    throw new Error("the cluster's slot layout kept changing during a scan");
  }

  /** The cluster's slot map read again (no-op on a single primary). */
  refreshSlots(): Promise<void> {
    const c = this.client;
    if (!(c instanceof Cluster)) return Promise.resolve();
    return new Promise((resolve) => c.refreshSlotsCache(() => resolve()));
  }

  /** Where a plain connection to the primary of `key`'s slot goes (the feed's subscriber). */
  async subscriberOptionsFor(key: string): Promise<RedisOptions> {
    if (!this.isCluster) return this.nodeOptions;
    await this.refreshSlots();
    const { node } = this.nodeFor(key);
    return { ...this.nodeOptions, host: node.options.host, port: node.options.port };
  }

  /**
   * Whether a write on this primary must wait for a replica: it has one now (the cluster's slot
   * map, or the primary's own INFO, read again at most every few seconds), or it had one before.
   */
  private async needsWait(node: Redis, id: string): Promise<boolean> {
    if (this.replicated.has(id)) return true;
    const last = this.replicationRead.get(id);
    // Concurrent writes share one read: one that skipped it while another's was in flight went
    // unWAITed on a primary with a (frozen) replica (found by test/cluster/failover).
    if (!last || Date.now() - last.at > REPLICATION_INFO_MAX_AGE_MS) {
      const read = node.info("replication").then((info) => {
        if (Number(/connected_slaves:(\d+)/.exec(String(info))?.[1] ?? 0) > 0) this.replicated.add(id);
      });
      this.replicationRead.set(id, { at: Date.now(), read });
      read.catch(() => this.replicationRead.delete(id)); // the next write asks again
    }
    const pending = this.replicationRead.get(id);
    if (!pending) return true;
    // Not read (the primary did not answer): wait, and let WAIT say whether a replica has it.
    return pending.read.then(
      () => this.replicated.has(id),
      () => true,
    );
  }
}

function nodeKey(o: { host?: string; port?: number }): string {
  return `${o.host ?? "127.0.0.1"}:${o.port ?? 6379}`;
}

/** Cluster options equivalent to the single client's: the same per-node options, no queueing at the cluster level either. */
export function clusterOptions(redisOptions: RedisOptions): ClusterOptions {
  return {
    redisOptions,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    // MOVED/ASK after a failover or a migration are followed; a call still fails within commandTimeout.
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    clusterRetryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
    slotsRefreshTimeout: 1000,
    // the slot map (and each primary's replicas) follows failovers and migrations without waiting for a MOVED
    slotsRefreshInterval: 5000,
  };
}

/** ioredis options for one node from a redis:// or rediss:// URL (credentials, TLS, db). */
export function optionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  const o: RedisOptions = { host: u.hostname, port: u.port ? Number(u.port) : 6379 };
  if (u.username) o.username = decodeURIComponent(u.username);
  if (u.password) o.password = decodeURIComponent(u.password);
  if (u.protocol === "rediss:") o.tls = {};
  const db = u.pathname.replace(/^\//, "");
  if (db) o.db = Number(db);
  return o;
}

export function notReplicated(): GatehouseError {
  return new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE, "The revocation could not be replicated in time; retry it.");
}
