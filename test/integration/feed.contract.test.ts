/**
 * The RevocationFeed contract (server/store/feed.ts), run unchanged against every backend: the
 * MemoryFeed of a MemoryStore, and the RedisFeed of a RedisStore on one redis-server and on a
 * Redis Cluster this file starts. A "node" is a store and its feed; on Redis a second node (its
 * own connections to the same Redis) shows what travels between nodes. Memory is one process,
 * so one node: the tests that need a peer run on Redis only.
 *
 * Loss of the subscription, malformed messages and Redis outages are Redis-only (redis-store.test.ts,
 * redis-cluster-store.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../shared/errors";
import type { FeedStatusListener, RevocationFeed } from "../../server/store/feed";
import { MemoryStore } from "../../server/store/memory";
import { MemoryFeed } from "../../server/store/memory-feed";
import { RedisStore } from "../../server/store/redis";
import { RedisFeed } from "../../server/store/redis-feed";
import type { RevocationChange, RevocationEvent, Store, UserRecord } from "../../server/store/store";
import { codeOf } from "../helpers/errors";
import { useRedis } from "../helpers/redis-fixture";
import { waitFor } from "../helpers/wait";

interface FeedNode {
  store: Store;
  feed: RevocationFeed;
}

interface Harness {
  /** a node on a fresh, empty store */
  create(): Promise<FeedNode>;
  /** another node on the same store; absent where one process is all there is (memory) */
  peer?(): Promise<FeedNode>;
}

const quiet: FeedStatusListener = { onLost: () => {}, onResumed: () => {} };
let counter = 0;
const uid = () => `u${++counter}x${Math.random().toString(36).slice(2, 8)}`;

function user(): UserRecord {
  const id = uid();
  return { id, username: `n_${id}`, role: "player", passwordHash: "scrypt$h", guest: false, createdAt: Date.now(), version: 0, tokenValidAfter: 0, ban: null };
}

function contract(h: Harness): void {
  let node: FeedNode;
  /** closed after each test, feeds before their stores, last opened first */
  const opened: FeedNode[] = [];

  const open = async (make: () => Promise<FeedNode>): Promise<FeedNode> => {
    const n = await make();
    opened.push(n);
    return n;
  };
  beforeEach(async () => {
    node = await open(() => h.create());
  });
  afterEach(async () => {
    for (const n of opened.splice(0).reverse()) {
      await n.feed.close();
      await n.store.close();
    }
  });

  /** Subscribes to `feed` and collects its events once ready. */
  async function record(feed: RevocationFeed, opts?: { nodeId?: string; onEvent?: (e: RevocationEvent) => void }): Promise<RevocationEvent[]> {
    const events: RevocationEvent[] = [];
    const sub = feed.subscribe(
      (e) => {
        events.push(e);
        opts?.onEvent?.(e);
      },
      quiet,
      opts?.nodeId === undefined ? {} : { nodeId: opts.nodeId },
    );
    await sub.ready;
    return events;
  }

  const revoke = (store: Store, change: RevocationChange, nodeId = "node-test") => store.applyRevocation(change, { now: Date.now(), markTtlMs: 60_000, nodeId });

  it("delivers every event the store publishes, as it returned it, in seq order, to every subscriber, the issuer's own included", async () => {
    const peer = h.peer ? await open(h.peer) : null;
    const mine = await record(node.feed);
    const alsoMine = await record(node.feed);
    const theirs = peer ? await record(peer.feed) : null;
    const u = user();
    await node.store.createUser(u);
    const sent = [
      await revoke(node.store, { kind: "session", userId: u.id, sessionId: `${u.id}.${"s".repeat(22)}`, jti: "j1", jtiExp: Date.now() + 30_000, reason: "logout", note: "bye" }),
      await revoke(node.store, { kind: "user", userId: u.id, ban: { until: null, reason: "cheating" }, reason: "banned", note: "cheating" }),
      await revoke(node.store, { kind: "unban", userId: u.id, reason: "unbanned" }),
      await revoke(node.store, { kind: "global", reason: "revoked_all" }),
    ];
    expect(sent.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    for (const events of [mine, alsoMine, ...(theirs ? [theirs] : [])]) {
      await waitFor(() => events.length === sent.length, { message: "every event delivered" });
      expect(events).toEqual(sent);
    }
  });

  it("currentSeq is the seq of the latest revocation applied, on every node", async () => {
    const peer = h.peer ? await open(h.peer) : null;
    expect(await node.feed.currentSeq()).toBe(0);
    await revoke(node.store, { kind: "global", reason: "revoked_all" });
    const last = await revoke(node.store, { kind: "user", userId: "nobody", reason: "kicked" });
    expect(await node.feed.currentSeq()).toBe(last.seq);
    if (peer) expect(await peer.feed.currentSeq()).toBe(last.seq);
  });

  it("a closed subscription receives nothing more; the others still do", async () => {
    const events: RevocationEvent[] = [];
    const sub = node.feed.subscribe((e) => events.push(e), quiet);
    await sub.ready;
    const witness = await record(node.feed);
    await sub.close();
    await sub.close(); // idempotent
    await revoke(node.store, { kind: "global", reason: "revoked_all" });
    await waitFor(() => witness.length === 1, { message: "the open subscription got the event" });
    expect(events).toEqual([]);
  });

  it("a closed feed delivers nothing, refuses new subscriptions, and its store goes on", async () => {
    let lost = 0;
    const events: RevocationEvent[] = [];
    await node.feed.subscribe((e) => events.push(e), { onLost: () => lost++, onResumed: () => {} }).ready;
    const peer = h.peer ? await open(h.peer) : null;
    const witness = peer ? await record(peer.feed) : null;
    await node.feed.close();
    await node.feed.close(); // idempotent
    const e = await revoke(node.store, { kind: "global", reason: "revoked_all" });
    // Memory delivers synchronously inside applyRevocation: nothing can be on its way.
    if (witness) await waitFor(() => witness.length === 1, { message: "another node got the event" });
    expect(events).toEqual([]);
    expect(lost).toBe(0);
    expect(await codeOf(node.feed.subscribe(() => {}, quiet).ready)).toBe(ErrorCode.REVOCATION_UNAVAILABLE);
    expect((await node.store.loadMarks(Date.now())).seq).toBe(e.seq);
  });

  it("with the issuer the only subscriber, its own acknowledgement completes confirmApplied", async () => {
    const events = await record(node.feed, { nodeId: "a", onEvent: (e) => node.feed.acknowledge(e, "a") });
    const e = await revoke(node.store, { kind: "global", reason: "revoked_all" }, "a");
    expect(await node.feed.confirmApplied(e, 10_000)).toBe(0);
    await waitFor(() => events.length === 1, { message: "own event delivered" });
  });

  if (!h.peer) return;
  const peerOf = h.peer;

  describe("between nodes", () => {
    it("confirmApplied waits until every node that received the event acknowledged it, else reports the missing", async () => {
      const peer = await open(peerOf);
      const held: RevocationEvent[] = [];
      let peerAcknowledges = true;
      await record(node.feed, { nodeId: "a", onEvent: (e) => node.feed.acknowledge(e, "a") });
      await record(peer.feed, { nodeId: "b", onEvent: (e) => (peerAcknowledges ? peer.feed.acknowledge(e, "b") : held.push(e)) });
      const revokeAll = () => revoke(node.store, { kind: "global", reason: "revoked_all" }, "a");

      // Both subscribers (A's own and B) confirm.
      expect(await node.feed.confirmApplied(await revokeAll(), 10_000)).toBe(0);

      // B holds its confirmation: the issuer keeps waiting until B sends it.
      peerAcknowledges = false;
      const e2 = await revokeAll();
      let settled = false;
      const waiting = node.feed.confirmApplied(e2, 10_000).then((missing) => ((settled = true), missing));
      await waitFor(() => held.length === 1, { message: "B received the event" });
      expect(settled).toBe(false);
      peer.feed.acknowledge(held[0]!, "b");
      expect(await waiting).toBe(0);

      // B never confirms: the wait ends at its timeout and says one node is missing.
      const e3 = await revokeAll();
      expect(await node.feed.confirmApplied(e3, 200)).toBe(1);
    });

    it("closing the feed releases a confirmApplied still waiting, with the nodes still missing", async () => {
      const peer = await open(peerOf);
      await record(node.feed, { nodeId: "a", onEvent: (e) => node.feed.acknowledge(e, "a") });
      const received = await record(peer.feed, { nodeId: "b" }); // never acknowledges
      const e = await revoke(node.store, { kind: "global", reason: "revoked_all" }, "a");
      const waiting = node.feed.confirmApplied(e, 60_000);
      await waitFor(() => received.length === 1, { message: "B received the event" });
      await node.feed.close();
      expect(await waiting).toBe(1);
    });
  });
}

describe("MemoryFeed", () => {
  contract({
    create: async () => {
      const feed = new MemoryFeed();
      return { store: new MemoryStore({ feed }), feed };
    },
  });
});

/** A node on Redis: a store and the feed riding on its connections. */
async function redisNode(connect: () => Promise<RedisStore>): Promise<FeedNode> {
  const store = await connect();
  return { store, feed: RedisFeed.for(store) };
}

// On a cluster every event and acknowledgement travels on the {g} slot's sharded channels, on
// whichever primary serves it.
for (const [kind, name] of [
  ["single", "RedisFeed on one primary"],
  ["cluster", "RedisFeed on a Redis Cluster"],
] as const) {
  describe(name, () => {
    const redis = useRedis(kind);
    const connect = () => RedisStore.connect(redis.connectOptions());
    contract({
      create: async () => {
        await redis.flush();
        return redisNode(connect);
      },
      peer: () => redisNode(connect),
    });
  });
}
