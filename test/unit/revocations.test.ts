/**
 * The feed follower's bookkeeping, driven by hand: gaps trigger a resync,
 * events that land during a snapshot load survive it, a store that lost its
 * data does not wipe the cache, and staleness is bounded. (Real Redis loss is
 * exercised in test/cluster; this pins the ordering logic down.)
 */
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { RevocationCache } from "../../server/revocation/cache";
import { Revocations } from "../../server/revocation/revocations";
import type { FeedStatusListener } from "../../server/store/feed";
import { MemoryStore } from "../../server/store/memory";
import { MemoryFeed } from "../../server/store/memory-feed";
import type { MarkSnapshot, RevocationEvent } from "../../server/store/store";

const empty = (seq: number, epoch: string): MarkSnapshot => ({ epoch, seq, jtis: [], sessions: [], users: [], bans: [], global: null });

/** A MemoryFeed we deliver to and drop by hand, and whose seq probe we can move. */
class ControlledFeed extends MemoryFeed {
  deliver: (e: RevocationEvent) => void = () => undefined;
  status: FeedStatusListener | undefined;
  /** what currentSeq() answers (and the store's snapshots carry), when set */
  seqOverride: number | undefined;
  override async currentSeq(): Promise<number> {
    return this.seqOverride ?? super.currentSeq();
  }
  override subscribe(onEvent: (e: RevocationEvent) => void, status: FeedStatusListener) {
    this.deliver = onEvent;
    this.status = status;
    return { ready: Promise.resolve(), close: async () => undefined };
  }
}

/** A MemoryStore whose snapshots we can hold back. */
class ControlledStore extends MemoryStore {
  nextSnapshot: MarkSnapshot | undefined;
  pendingLoad: ((s: MarkSnapshot) => void) | undefined;
  hold = false;
  loads = 0;
  constructor(
    private readonly controlled: ControlledFeed,
    now: () => number,
  ) {
    super({ feed: controlled, now });
  }
  override async loadMarks(now: number): Promise<MarkSnapshot> {
    this.loads++;
    let snap = this.nextSnapshot;
    if (!snap) {
      const base = await super.loadMarks(now);
      const seq = this.controlled.seqOverride;
      snap = seq !== undefined ? { ...base, seq } : base;
    }
    const ready = snap;
    if (!this.hold) return ready;
    return new Promise((resolve) => (this.pendingLoad = () => resolve(ready)));
  }
}

function setup(maxStalenessMs = 1000) {
  const clock = { t: 1_000_000, now() { return this.t; } };
  const feed = new ControlledFeed();
  const store = new ControlledStore(feed, () => clock.t);
  const cache = new RevocationCache();
  const enforced: RevocationEvent[] = [];
  let sweeps = 0;
  const rev = new Revocations(store, feed, cache, clock, pino({ level: "silent" }), {
    nodeId: "me",
    markTtlMs: 60_000,
    maxStalenessMs,
    enforce: (e) => enforced.push(e),
    sweep: () => sweeps++,
  });
  const ev = (seq: number, sessionId: string): RevocationEvent => ({
    seq, kind: "session", sessionId, userId: "u", reason: "logout", at: clock.t, expiresAt: clock.t + 60_000, nodeId: "other",
  });
  const claims = (sid: string) => ({ sub: "u", sid, jti: `j-${sid}`, ver: 0, iat: 1000 });
  return { clock, store, feed, cache, rev, enforced, ev, claims, sweeps: () => sweeps };
}

describe("Revocations (feed follower)", () => {
  it("starts in sync and applies feed events to the cache and to sockets", async () => {
    const { feed, cache, rev, enforced, ev, claims, clock } = setup();
    await rev.start();
    expect(rev.inSync).toBe(true);
    feed.deliver(ev(1, "s1"));
    expect(cache.coverage(claims("s1"), clock.t)?.reason).toBe("logout");
    expect(enforced.map((e) => e.seq)).toEqual([1]);
  });

  it("a gap in seq triggers a resync and a sweep of local sockets", async () => {
    const { store, feed, rev, ev, sweeps } = setup();
    await rev.start();
    feed.deliver(ev(1, "s1"));
    const loadsBefore = store.loads;
    feed.deliver(ev(3, "s3")); // 2 never arrived
    expect(rev.inSync).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(store.loads).toBe(loadsBefore + 1);
    expect(rev.inSync).toBe(true);
    expect(sweeps()).toBeGreaterThanOrEqual(2);
  });

  it("events arriving while a snapshot loads are not wiped by it", async () => {
    const { store, feed, cache, rev, ev, claims, clock } = setup();
    await rev.start();
    const { epoch } = await store.loadMarks(0);
    store.hold = true;
    store.nextSnapshot = empty(5, epoch); // taken before event 6 was written
    feed.status!.onLost();
    feed.status!.onResumed();
    feed.deliver(ev(6, "s6"));
    store.pendingLoad!(empty(5, epoch));
    await new Promise((r) => setImmediate(r));
    expect(rev.inSync).toBe(true);
    expect(cache.coverage(claims("s6"), clock.t)).not.toBeNull();
  });

  it.each([
    ["its seq went back", 0],
    ["its seq already counted past ours", 50],
  ])("a store that lost its data (%s) does not erase cached marks and revokes every earlier token", async (_why, newSeq) => {
    const { store, feed, cache, rev, ev, claims, clock } = setup();
    await rev.start();
    for (let i = 1; i <= 4; i++) feed.deliver(ev(i, `s${i}`));
    store.nextSnapshot = empty(newSeq, "a-new-dataset");
    feed.status!.onLost();
    feed.status!.onResumed();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(rev.inSync).toBe(true);
    expect(cache.coverage(claims("s2"), clock.t)).not.toBeNull();
    // Tokens issued before the loss: their users and sessions are gone from the store.
    expect(cache.globalValidAfter(clock.t)).toBe(Math.floor(clock.t / 1000) + 1);
    expect(cache.coverage({ ...claims("fresh"), iat: Math.floor(clock.t / 1000) }, clock.t)?.reason).toBe("revoked_all");
  });

  it("out of sync: admits for at most the staleness window, then refuses until resynced", async () => {
    const { feed, rev, clock } = setup(1000);
    await rev.start();
    feed.status!.onLost();
    expect(rev.inSync).toBe(false);
    expect(rev.available()).toBe(true);
    clock.t += 1001;
    expect(rev.available()).toBe(false);
    feed.status!.onResumed();
    await new Promise((r) => setImmediate(r));
    expect(rev.available()).toBe(true);
    await rev.close();
  });

  it("a lost event with nothing after it is caught by the seq probe", async () => {
    vi.useFakeTimers({ toFake: ["setInterval"] });
    try {
      const { store, feed, rev, ev } = setup();
      await rev.start();
      feed.deliver(ev(1, "s1"));
      feed.seqOverride = 2; // event 2 was published, never delivered, and nothing followed it
      const loadsBefore = store.loads;
      await vi.advanceTimersByTimeAsync(1000); // first probe: maybe just in flight
      expect(store.loads).toBe(loadsBefore);
      await vi.advanceTimersByTimeAsync(1000); // second probe: still behind -> lost
      await new Promise((r) => setImmediate(r));
      expect(store.loads).toBe(loadsBefore + 1);
      expect(rev.inSync).toBe(true);
      expect(rev.seq).toBe(2);
      await rev.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
