/**
 * RedisStore behaviour that only Redis shows, on one primary and on a Redis Cluster with
 * replicas: half-made username claims, and revocations that survive a failover (contract
 * section 5 "Failover": a revocation answered 2xx was replicated first, else it is answered 503).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../shared/errors";
import { RedisStore } from "../../server/store/redis";
import { RedisFeed } from "../../server/store/redis-feed";
import { keySlot } from "../../server/store/redis-keys";
import { NAME_CLAIM_GRACE_MS } from "../../server/store/redis-users";
import type { RevocationEvent, UserRecord } from "../../server/store/store";
import { codeOf } from "../helpers/errors";
import { startRedis, startRedisCluster, type RedisClusterProcess, type RedisProcess } from "../helpers/redis-server";
import { deferred, waitFor, within } from "../helpers/wait";

const CTX = { markTtlMs: 60_000, nodeId: "node-test" };
let counter = 0;
const newId = () => `u${++counter}x${Math.random().toString(36).slice(2, 10)}`;
const sidOf = (uid: string) => `${uid}.${"s".repeat(21)}${counter % 10}`;

function user(over: Partial<UserRecord> = {}): UserRecord {
  const id = over.id ?? newId();
  return { id, username: `n_${id}`, role: "player", passwordHash: "scrypt$h", guest: false, createdAt: Date.now(), version: 0, tokenValidAfter: 0, ban: null, ...over };
}

interface Topo {
  connect(): Promise<RedisStore>;
  /** a plain client for the key's slot */
  raw(): Redis | Cluster;
}

function halfMadeNames(t: () => Topo): void {
  it("a name whose creation died half-way is free again after the grace, and reads as no user", async () => {
    const store = await t().connect();
    try {
      const raw = t().raw();
      // what a creation that died after claiming the name leaves: the claim, no record
      await raw.set("gh:un:ghost_name", `ghost-id ${Date.now() - NAME_CLAIM_GRACE_MS - 1}`);
      expect(await store.getUserByUsername("Ghost_Name")).toBeNull();
      const u = user({ username: "Ghost_Name" });
      await store.createUser(u);
      expect(await store.getUserByUsername("ghost_name")).toEqual(u);
      expect((await store.searchUsers("ghost", 10)).map((x) => x.id)).toEqual([u.id]);

      // a claim that young may be a creation under way: the name is taken for now
      await raw.set("gh:un:busy_name", `other-id ${Date.now()}`);
      expect(await codeOf(store.createUser(user({ username: "busy_name" })))).toBe(ErrorCode.USERNAME_TAKEN);
      expect(await store.getUserByUsername("busy_name")).toBeNull();

      // the admin account takes over a dead claim too, and only once from several nodes
      await raw.set("gh:un:boss", `ghost-admin ${Date.now() - NAME_CLAIM_GRACE_MS - 1}`);
      const admins = await Promise.all([1, 2, 3].map((i) => store.upsertAdmin(user({ username: "Boss", role: "admin", passwordHash: `scrypt$${i}` }))));
      expect(new Set(admins.map((a) => a.id)).size).toBe(1);
      expect((await store.getUserByUsername("boss"))?.id).toBe(admins[0]!.id);
    } finally {
      await store.close();
    }
  });
}

/** The two-slot session steps (see RedisSessions.sessionStep) against revocations landing between their calls. */
function crossSlotSteps(t: () => Topo): void {
  it("a revoke-all right after a user revocation cuts past that user's cutoff; a session step re-reads {g} after a later user revocation", async () => {
    const store = await t().connect();
    try {
      const u = user();
      await store.createUser(u);
      // A token issued between the two may carry the user cutoff as iat: the revoke-all must cover it.
      const byUser = await store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX });
      const all = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: Date.now(), ...CTX });
      if (Math.floor(all.at / 1000) === Math.floor(byUser.at / 1000)) expect(all.tokenValidAfter).toBeGreaterThan(byUser.tokenValidAfter!);
      else expect(all.tokenValidAfter).toBe(Math.floor(all.at / 1000) + 1);

      // A user revocation whose {g} time is after the step's own {g} read (as if it landed between
      // the two calls, seen here as one from the future) makes the step read {g} again, and give up
      // (503) if that keeps happening, rather than issue a token with that cutoff as iat.
      const raw = t().raw();
      await raw.hset(`gh:u:{${u.id}}`, "revokedAt", String(Date.now() + 60_000));
      const ns = { id: sidOf(u.id), userId: u.id, device: "d", refreshHash: "a".repeat(64), now: Date.now(), expiresAt: Date.now() + 60_000 };
      expect(await codeOf(store.createSession(ns, 1))).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
      await raw.hset(`gh:u:{${u.id}}`, "revokedAt", String(Date.now() - 1));
      const ok = await store.createSession(ns, 1);
      expect(ok).toMatchObject({ status: "ok", basis: { version: 1, notBeforeIat: all.tokenValidAfter } });
    } finally {
      await store.close();
    }
  });
}

describe("RedisStore on one primary", () => {
  let server: RedisProcess;
  let raw: Redis;
  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    raw?.disconnect();
    await server?.stop();
  });
  halfMadeNames(() => ({ connect: () => RedisStore.connect({ url: server.url }), raw: () => raw }));
  crossSlotSteps(() => ({ connect: () => RedisStore.connect({ url: server.url }), raw: () => raw }));

  it("with a replica, a revocation waits for it: a frozen replica means 503, not an unreplicated 2xx", async () => {
    // No RDB file anywhere: the primary streams the sync, the replica keeps its files in a temp dir.
    await raw.config("SET", "repl-diskless-sync", "yes");
    await raw.config("SET", "repl-diskless-sync-delay", "0");
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-replica-"));
    const replica = await startRedis({ args: ["--replicaof", "127.0.0.1", String(server.port), "--dir", dir, "--repl-diskless-load", "on-empty-db"] });
    const store = await RedisStore.connect({ url: server.url });
    try {
      await waitFor(async () => (await raw.info("replication")).includes("state=online"), { message: "replica in sync" });
      const u = user();
      await store.createUser(u);
      const ok = await store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX });
      expect(ok.version).toBe(1);
      replica.pause();
      const started = Date.now();
      expect(await codeOf(store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX }))).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
      // it waited for the replica (WAIT's bound), then gave up
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      replica.resume();
      // Back: once it has caught up with the primary (on a busy machine that takes a moment),
      // revocations are answered again.
      await waitFor(
        async () => {
          const info = await raw.info("replication");
          const offset = Number(/master_repl_offset:(\d+)/.exec(info)?.[1]);
          return new RegExp(`slave0:[^\\n]*state=online,offset=${offset},`).test(info);
        },
        { message: "replica caught up", timeoutMs: 10_000 },
      );
      expect((await store.applyRevocation({ kind: "session", userId: u.id, sessionId: sidOf(u.id), reason: "logout" }, { now: Date.now(), ...CTX })).kind).toBe("session");
    } finally {
      replica.resume();
      await store.close();
      await replica.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("RedisStore on a Redis Cluster with replicas", () => {
  let cluster: RedisClusterProcess;
  let raw: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
    raw = new Cluster([cluster.urls[0]!]);
    raw.on("error", () => {});
  }, 60_000);
  afterAll(async () => {
    raw?.disconnect();
    await cluster?.stop();
  });
  const connect = () => RedisStore.connect({ clusterNodes: cluster.urls });

  /** Subscribes to `store`'s feed, recording its events and when it is lost and resumed. */
  async function recordFeed(store: RedisStore) {
    const events: RevocationEvent[] = [];
    const lost = deferred<void>();
    const resumed = deferred<void>();
    const feed = RedisFeed.for(store);
    const sub = feed.subscribe((e) => events.push(e), { onLost: () => lost.resolve(), onResumed: () => resumed.resolve() });
    await sub.ready;
    return { events, lost, resumed, feed };
  }

  halfMadeNames(() => ({ connect, raw: () => raw }));
  crossSlotSteps(() => ({ connect, raw: () => raw }));

  it("the feed follows the {g} slot when it migrates to another primary (Redis unsubscribes it), and snapshots still see every mark", async () => {
    const store = await connect();
    const { events, lost, resumed, feed } = await recordFeed(store);
    try {
      const u = user();
      await store.createUser(u);
      const before = await store.applyRevocation({ kind: "user", userId: u.id, ban: { until: null }, reason: "banned" }, { now: Date.now(), ...CTX });
      await migrateSlot(keySlot("{g}"));
      await within(lost.promise, 10_000, "the feed reports the slot gone");
      await within(resumed.promise, 10_000, "the feed resumes on the slot's new primary");
      const next = await store.applyRevocation({ kind: "session", userId: u.id, sessionId: sidOf(u.id), reason: "logout" }, { now: Date.now(), ...CTX });
      expect(next.seq).toBe(before.seq + 1);
      await waitFor(() => events.some((e) => e.seq === next.seq), { timeoutMs: 10_000, message: "an event after the migration delivered" });
      const snap = await store.loadMarks(Date.now());
      expect(snap.seq).toBe(next.seq);
      expect(snap.bans.map((b) => b.userId)).toContain(u.id);
    } finally {
      await feed.close();
      await store.close();
    }
  }, 60_000);

  it("a snapshot or a revocation while a user's slot is half-way through a migration waits for it; no mark is missed", async () => {
    const store = await connect();
    try {
      const u = user();
      await store.createUser(u);
      const sid = `${u.id}.${"m".repeat(22)}`;
      await store.applyRevocation({ kind: "session", userId: u.id, sessionId: sid, jti: "j1", jtiExp: Date.now() + 60_000, reason: "logout" }, { now: Date.now(), ...CTX });
      await store.applyRevocation({ kind: "user", userId: u.id, ban: { until: null }, reason: "banned" }, { now: Date.now(), ...CTX });
      let finish!: () => Promise<void>;
      const started = migrateSlot(keySlot(`{${u.id}}`), (rest) => {
        finish = rest;
        return new Promise<void>(() => {}); // held half-way until finish() is called below
      });
      await waitFor(() => finish !== undefined, { message: "migration half-way" });
      const snapshot = store.loadMarks(Date.now());
      // a revocation of that user meanwhile waits for the move too, rather than answer 503
      const kick = store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX });
      setTimeout(() => void finish(), 300);
      const snap = await snapshot;
      expect((await kick).version).toBe(2);
      void started;
      // (other tests of this file left marks of their own users)
      expect(snap.sessions.filter((m) => m.sessionId === sid)).toHaveLength(1);
      expect(snap.jtis.filter((m) => m.jti === "j1")).toHaveLength(1);
      expect(snap.users.filter((m) => m.userId === u.id)).toHaveLength(1);
      expect(snap.bans.filter((m) => m.userId === u.id)).toHaveLength(1);
    } finally {
      await store.close();
    }
  }, 60_000);

  /** Moves one slot (and its keys) to another primary, as `redis-cli --cluster reshard` does. */
  async function migrateSlot(slot: number, pauseHalfWay?: (rest: () => Promise<void>) => Promise<void>): Promise<void> {
    const shards = await cluster.shards();
    const from = shards.find((sh) => sh.slots.some(([a, b]) => slot >= a && slot <= b))!;
    const to = shards.find((sh) => sh !== from)!;
    const open = (url: string) => new Redis(url, { maxRetriesPerRequest: 1 });
    const src = open(from.primary.url);
    const dst = open(to.primary.url);
    try {
      const srcId = String(await src.cluster("MYID"));
      const dstId = String(await dst.cluster("MYID"));
      await dst.cluster("SETSLOT", slot, "IMPORTING", srcId);
      await src.cluster("SETSLOT", slot, "MIGRATING", dstId);
      const moveKeys = async (max: number) => {
        const keys = (await src.cluster("GETKEYSINSLOT", slot, max)) as string[];
        if (keys.length > 0) await src.call("MIGRATE", "127.0.0.1", String(to.primary.port), "", "0", "5000", "KEYS", ...keys);
        return keys.length;
      };
      const rest = async () => {
        while ((await moveKeys(100)) > 0);
        for (const c of [dst, src]) await c.cluster("SETSLOT", slot, "NODE", dstId);
        for (const sh of shards) {
          if (sh === from || sh === to) continue;
          const other = open(sh.primary.url);
          await other.cluster("SETSLOT", slot, "NODE", dstId).finally(() => other.disconnect());
        }
        src.disconnect();
        dst.disconnect();
      };
      if (pauseHalfWay) {
        await moveKeys(2); // some keys moved, some not
        // the caller finishes it
        void pauseHalfWay(rest);
        return;
      }
      await rest();
    } catch (err) {
      src.disconnect();
      dst.disconnect();
      throw err;
    }
  }

  // Last in this file: it leaves one shard without its replica.
  it("after a failover, the revocation writers left open to the demoted primary are closed", async () => {
    const store = await connect();
    const clients: Redis[] = [];
    const direct = (url: string) => {
      const c = new Redis(url, { maxRetriesPerRequest: 1 });
      c.on("error", () => {});
      clients.push(c);
      return c;
    };
    const writersOn = async (c: Redis) => (String(await c.call("CLIENT", "LIST")).match(/name=gatehouse-revocations /g) ?? []).length;
    try {
      const u = user();
      await store.createUser(u);
      const kick = () => store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX });
      await kick();
      const shard = await cluster.shardOf(`{${u.id}}`);
      const demoted = direct(shard.primary.url);
      expect(await writersOn(demoted)).toBeGreaterThan(0);

      // A graceful failover: the replica takes over, the old primary stays up as its replica.
      const promoted = shard.replicas[0]!;
      await direct(promoted.url).call("CLUSTER", "FAILOVER");
      await waitFor(async () => (await cluster.shardOf(`{${u.id}}`)).primary.port === promoted.port, { timeoutMs: 15_000, message: "the replica took over" });
      await cluster.waitUntilHealthy({ timeoutMs: 30_000 });

      // The next revocation meets MOVED on its old writer, reads the slot map again (which drops the
      // demoted node's writers) and runs on the new primary.
      await kick();
      await waitFor(async () => (await writersOn(demoted)) === 0, { timeoutMs: 5_000, message: "no revocation writer left on the demoted primary" });
      expect(await writersOn(direct(promoted.url))).toBeGreaterThan(0);
    } finally {
      for (const c of clients) c.disconnect();
      await store.close();
    }
  }, 60_000);

  it("a revocation is answered only once a replica holds it (else 503), so none answered 2xx is lost in a failover; the feed follows the new primary", async () => {
    const store = await connect();
    const { events, lost, resumed, feed } = await recordFeed(store);
    let after: RedisStore | undefined;
    let frozen: { resume(): void } | undefined;
    try {
      // a user on the shard of {g}: the failover then moves the user's slot and the feed's together
      const g = await cluster.shardOf("{g}");
      let u = user();
      while (!g.slots.some(([a, b]) => keySlot(`{${u.id}}`) >= a && keySlot(`{${u.id}}`) <= b)) u = user();
      await store.createUser(u);
      const shard = g;
      const sid = sidOf(u.id);
      const kept = await store.applyRevocation({ kind: "session", userId: u.id, sessionId: sid, reason: "logout" }, { now: Date.now(), ...CTX });
      const banned = await store.applyRevocation({ kind: "user", userId: u.id, ban: { until: null }, reason: "banned" }, { now: Date.now(), ...CTX });

      // The user's shard loses its only replica (frozen): a revocation there cannot be promised.
      const replica = shard.replicas[0]!;
      replica.pause();
      frozen = replica;
      const started = Date.now();
      expect(await codeOf(store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX }))).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900); // WAIT's bound: it waited for the replica
      expect(Date.now() - started).toBeLessThan(3_000);

      // Its primary dies; the replica comes back and takes over.
      await shard.primary.kill();
      replica.resume();
      frozen = undefined;
      await cluster.waitUntilHealthy({ replicas: 0, timeoutMs: 30_000 });
      await within(lost.promise, 10_000, "the feed reports its primary lost");

      // Every revocation answered 2xx is on the new primary.
      after = await connect();
      const marks = await after.loadMarksFor({ userId: u.id, sessionId: sid, jti: "none" }, Date.now());
      expect(marks.sessions.map((m) => m.sessionId)).toEqual([sid]);
      expect(marks.users[0]?.version).toBeGreaterThanOrEqual(banned.version!);
      expect(marks.bans.map((b) => b.userId)).toEqual([u.id]);
      expect((await after.loadMarks(Date.now())).seq).toBeGreaterThanOrEqual(banned.seq);
      expect(kept.seq).toBeLessThan(banned.seq);

      // The first store finds the new primary by itself, and its feed resumes there (events in the
      // gap are the resync's business) and delivers again.
      await waitFor(() => store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now: Date.now(), ...CTX }).catch(() => null), {
        timeoutMs: 15_000,
        intervalMs: 200,
        message: "revocations answered again after the failover",
      });
      await within(resumed.promise, 10_000, "the feed resumes on the new primary");
      const next = await store.applyRevocation({ kind: "session", userId: u.id, sessionId: sid, reason: "logout" }, { now: Date.now(), ...CTX });
      await waitFor(() => events.some((e) => e.seq === next.seq), { timeoutMs: 10_000, message: "an event after the failover delivered" });
    } finally {
      frozen?.resume(); // a frozen process would not stop with the cluster
      await feed.close();
      await store.close();
      await after?.close();
    }
  }, 90_000);
});
