/**
 * RedisStore and RedisFeed behaviour the contracts cannot show on memory: the
 * feed losing and regaining its subscription, malformed messages, and failing
 * fast (503) while Redis is down, then recovering after a restart.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { FeedSubscription } from "../../server/store/feed";
import { RedisStore } from "../../server/store/redis";
import { RedisFeed } from "../../server/store/redis-feed";
import type { RevocationEvent, UserRecord } from "../../server/store/store";
import { freePort, startRedis, type RedisProcess } from "../helpers/redis-server";
import { deferred, waitFor, within, type Deferred } from "../helpers/wait";

const CTX = { markTtlMs: 60_000, nodeId: "node-test" };

function user(name: string): UserRecord {
  return { id: `id-${name}`, username: name, role: "player", passwordHash: "scrypt$h", guest: false, createdAt: Date.now(), version: 0, tokenValidAfter: 0, ban: null };
}

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

/** A feed subscription whose lost/resumed signals can be awaited, one round at a time. */
class FeedProbe {
  readonly events: RevocationEvent[] = [];
  lostCount = 0;
  resumedCount = 0;
  lost: Deferred<void> = deferred();
  resumed: Deferred<void> = deferred();
  sub!: FeedSubscription;

  constructor(feed: RedisFeed) {
    this.sub = feed.subscribe((e) => this.events.push(e), {
      onLost: () => {
        this.lostCount++;
        this.lost.resolve();
      },
      onResumed: () => {
        this.resumedCount++;
        this.resumed.resolve();
      },
    });
  }

  rearm(): void {
    this.lost = deferred();
    this.resumed = deferred();
  }
}

describe("RedisStore on a real redis-server", () => {
  let server: RedisProcess;
  let store: RedisStore;
  let feed: RedisFeed;
  let probe: FeedProbe;
  let admin: Redis | undefined;

  const adminClient = (): Redis => {
    if (!admin) {
      admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
      admin.on("error", () => {});
    }
    return admin;
  };

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    await adminClient().flushdb();
    store = await RedisStore.connect({ url: server.url, keyPrefix: "t:" });
    feed = RedisFeed.for(store);
    probe = new FeedProbe(feed);
    await probe.sub.ready;
  });
  afterEach(async () => {
    await probe.sub.close();
    await feed.close();
    await store.close();
    admin?.disconnect();
    admin = undefined;
  });

  it("reports lost then resumed after CLIENT KILL TYPE pubsub, and delivers later events", async () => {
    await adminClient().client("KILL", "TYPE", "pubsub");
    await within(probe.lost.promise, 5000, "onLost");
    await within(probe.resumed.promise, 5000, "onResumed");
    expect([probe.lostCount, probe.resumedCount]).toEqual([1, 1]);

    const e = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: Date.now(), ...CTX });
    await waitFor(() => probe.events.length === 1, { message: "event after resume" });
    expect(probe.events[0]).toEqual(e);
  });

  it("drops malformed feed messages and keeps delivering", async () => {
    const a = adminClient();
    await a.spublish("t:revocations:{g}", "not json");
    await a.spublish("t:revocations:{g}", JSON.stringify({ seq: "x", kind: "nope" }));
    const e = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: Date.now(), ...CTX });
    await waitFor(() => probe.events.length >= 1);
    expect(probe.events).toEqual([e]);
  });

  it("fails fast with REVOCATION_UNAVAILABLE while Redis is down, and recovers after a restart", async () => {
    await store.createUser(user("before"));
    const epochBefore = (await store.loadMarks(Date.now())).epoch;
    await server.stop();
    await within(probe.lost.promise, 5000, "onLost");

    const started = Date.now();
    const err = await within(errorOf(store.getUser("id-before")), 2000, "getUser while down");
    expect(err).toBeInstanceOf(GatehouseError);
    expect((err as GatehouseError).code).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
    expect((err as GatehouseError).cause).toBeDefined();
    const revokeErr = await within(errorOf(store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: Date.now(), ...CTX })), 2000, "applyRevocation while down");
    expect((revokeErr as GatehouseError).code).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
    expect(await within(store.ping(), 2000, "ping while down")).toBe(false);
    expect(Date.now() - started).toBeLessThan(2500);

    await server.restart();
    await waitFor(() => store.ping(), { timeoutMs: 10_000, message: "store answers again" });
    // the data went with the old process (no persistence); scripts are loaded again on demand
    await store.createUser(user("after"));
    expect((await store.getUserByUsername("AFTER"))?.id).toBe("id-after");
    expect(await codeOf(store.createUser({ ...user("After"), id: "other" }))).toBe(ErrorCode.USERNAME_TAKEN);

    await within(probe.resumed.promise, 10_000, "onResumed");
    // A dataset that came back empty has a new epoch: that is how nodes notice the loss.
    const epochAfter = (await store.loadMarks(Date.now())).epoch;
    expect(epochAfter).not.toBe(epochBefore);
    expect((await store.loadMarks(Date.now())).epoch).toBe(epochAfter);
    const e = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: Date.now(), ...CTX });
    await waitFor(() => probe.events.some((x) => x.seq === e.seq), { message: "event after restart" });
    expect([probe.lostCount, probe.resumedCount]).toEqual([1, 1]);
  });

  it("connect gives up with REVOCATION_UNAVAILABLE when nothing listens", async () => {
    const port = await freePort();
    const err = await errorOf(RedisStore.connect({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 300 }));
    expect((err as GatehouseError).code).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
  });

  it("closing the store first closes its feed's subscriptions (they ride on its connections) without reporting a loss", async () => {
    const other = await RedisStore.connect({ url: server.url, keyPrefix: "t:" });
    const otherFeed = RedisFeed.for(other);
    const p = new FeedProbe(otherFeed);
    await p.sub.ready;
    await other.close();
    await p.sub.close(); // idempotent
    expect(await codeOf(otherFeed.subscribe(() => {}, { onLost: () => {}, onResumed: () => {} }).ready)).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
    await new Promise((r) => setTimeout(r, 50));
    expect([p.lostCount, p.resumedCount]).toEqual([0, 0]);
    expect(await other.ping()).toBe(false);
  });

  it("keeps keys under its prefix and gives marks real TTLs", async () => {
    const now = Date.now();
    await store.createUser(user("ttl"));
    await store.applyRevocation({ kind: "user", userId: "id-ttl", ban: { until: null }, reason: "banned" }, { now, ...CTX });
    const keys = await adminClient().keys("*");
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith("t:"))).toBe(true);
    for (const k of ["t:m:u:{id-ttl}", "t:m:b:{id-ttl}"]) {
      const ttl = await adminClient().pttl(k);
      expect(ttl).toBeGreaterThan(CTX.markTtlMs - 5_000);
      expect(ttl).toBeLessThanOrEqual(CTX.markTtlMs);
    }
    expect(await adminClient().pttl("t:u:{id-ttl}")).toBe(-1); // users do not expire
  });
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof GatehouseError ? err.code : String(err);
  }
}

describe("RedisStore over a dataset of the layout before hash tags", () => {
  it("brings accounts, the revoke-all cutoff and the sequence over once; old sessions are dropped", async () => {
    const server = await startRedis();
    const raw = new Redis(server.url);
    try {
      const now = Date.now();
      // what the earlier version left: a user, its name, a session and its index, a global mark, seq
      await raw.hset("gh:u:old1", { id: "old1", username: "Oldie", role: "player", guest: "0", createdAt: now, version: 2, tokenValidAfter: 5, passwordHash: "scrypt$x" });
      await raw.set("gh:un:oldie", "old1");
      await raw.hset("gh:s:oldsession", { id: "oldsession", userId: "old1", state: "live" });
      await raw.zadd("gh:us:old1", now + 60_000, "oldsession");
      const tva = Math.floor(now / 1000) + 1;
      await raw.set("gh:m:g", JSON.stringify({ tokenValidAfter: tva, expiresAt: now + 60_000, t: "g" }), "PX", 60_000);
      await raw.set("gh:seq", "7");
      // another module's key under the same prefix is left alone
      await raw.set("gh:u:not-a-user", "x");

      const store = await RedisStore.connect({ url: server.url });
      try {
        expect(await store.getUserByUsername("oldie")).toMatchObject({ id: "old1", version: 2, passwordHash: "scrypt$x" });
        expect((await store.searchUsers("old", 10)).map((u) => u.id)).toEqual(["old1"]);
        expect(await RedisFeed.for(store).currentSeq()).toBe(7);
        const snap = await store.loadMarks(now);
        expect(snap.global?.tokenValidAfter).toBe(tva);
        expect(await raw.exists("gh:s:oldsession", "gh:us:old1", "gh:u:old1")).toBe(0);
        expect(await raw.get("gh:u:not-a-user")).toBe("x");
        // a new session of the migrated user carries the old revoke-all's cutoff
        const created = await store.createSession({ id: `old1.${"a".repeat(22)}`, userId: "old1", device: "d", refreshHash: "b".repeat(64), now, expiresAt: now + 60_000 }, 2);
        expect(created).toMatchObject({ status: "ok", basis: { version: 2, notBeforeIat: tva } });
      } finally {
        await store.close();
      }
      expect(await raw.get("gh:layout:2")).toBe("1");
    } finally {
      raw.disconnect();
      await server.stop();
    }
  });
});
