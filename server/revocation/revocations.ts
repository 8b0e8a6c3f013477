/**
 * Revocations on this node: issuing them (durable + published via the store,
 * then applied locally at once, then confirmed over the feed) and following the
 * feed (cache + disconnects, acknowledged to the issuer), with loss detection and
 * resync from the store's snapshots (contract section 5, pitfalls 1).
 */
import type { Logger } from "pino";
import type { AccessClaims } from "../../shared/claims";
import type { Clock } from "../clock";
import type { FeedSubscription, RevocationFeed } from "../store/feed";
import type { RevocationChange, RevocationEvent, Store } from "../store/store";
import type { RevocationCache } from "./cache";

export interface RevocationsOptions {
  nodeId: string;
  /** how long marks live: the access-token lifetime plus clock tolerance */
  markTtlMs: number;
  /** REVOCATION_MAX_STALENESS */
  maxStalenessMs: number;
  /** called for every event (local or from the feed): disconnect the covered sockets (or register with onApplied) */
  enforce?(e: RevocationEvent): void;
  /** called after a resync: every local socket must be re-checked against the cache (or register with onResynced) */
  sweep?(): void;
  onEventApplied?(e: RevocationEvent, source: "local" | "feed"): void;
  /** a malformed or hostile feed message was dropped */
  onFeedRejected?(): void;
  /** `missing` nodes received the event but did not confirm it within the timeout */
  onUnconfirmed?(e: RevocationEvent, missing: number): void;
  /**
   * called once the node has found that the store lost data (its seq went back:
   * a Redis without persistence restarted) and has revoked every earlier token;
   * re-creates what the node itself put in the store at start (the admin account). Runs outside
   * the resync, once per loss found; a failure is logged, not retried
   */
  onStoreReset?(): Promise<void>;
}

const RESYNC_RETRY_MS = 250;
/**
 * How often the store's seq is compared with ours. A gap in seq is only seen
 * when a later event arrives, and a silently dead subscriber reports nothing:
 * the probe catches both (pitfall 1).
 */
const SEQ_PROBE_MS = 1000;
const PURGE_INTERVAL_MS = 10_000;
/** How long a revocation waits for the other nodes to confirm before answering anyway. */
const CONFIRM_TIMEOUT_MS = 1000;
/**
 * Out of sync while the store answers (a feed that cannot subscribe, say), live sockets are
 * re-checked against every live mark read from the store this often, capped at a third of
 * REVOCATION_MAX_STALENESS so a missed revocation drops its sockets well within it. The cost
 * is one SCAN of the marks per interval per out-of-sync node: marks are few (each dies with
 * the tokens it covers) and the state is an outage, not the steady state.
 */
const RECHECK_MAX_MS = 1000;
const RECHECK_MIN_MS = 100;

export class Revocations {
  private subscription: FeedSubscription | undefined;
  /** highest seq seen on the (ordered) feed; a jump means messages were lost */
  private lastSeq = 0;
  private synced = false;
  /** when the node stopped being able to vouch for its cache (ms), if out of sync */
  private unsyncedSince: number | null = null;
  private resyncing: Promise<void> | null = null;
  private resyncAgain = false;
  /** events seen while a snapshot loads, re-applied over it */
  private heldDuringResync: RevocationEvent[] | null = null;
  /** bumped on every loss, so a resync that overlapped a loss does not claim sync */
  private lossGeneration = 0;
  /** the cache was complete at least once (before that, nothing may be admitted) */
  private startedOnce = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly purgeTimer: NodeJS.Timeout;
  private probeTimer: NodeJS.Timeout | undefined;
  /** store seq seen by the previous probe that we had not reached yet */
  private probeBehind: number | null = null;
  /** lastSeq when we went out of sync: any event after that carries a higher seq unless the store went back */
  private seqAtLoss: number | null = null;
  /** a seq probe is in flight (a hung store makes one last until the command timeout) */
  private probing = false;
  /** the last seq probe failed: the store is hung or unreachable */
  private storeUnreachable = false;
  /** a feed event showed the store's seq went back while we were out of sync */
  private storeWentBack = false;
  /** the store dataset we were last in sync with (see MarkSnapshot.epoch) */
  private epoch: string | null = null;
  /** the store lost data: a global revocation must be written before we call ourselves in sync */
  private resetRevocationPending = false;
  /** a re-check of live sockets against the store's marks is in flight (out of sync only) */
  private rechecking = false;
  /** bumped when a resync starts: a re-check that overlapped one must not merge its older marks over it */
  private resyncGeneration = 0;
  private recheckTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly appliedListeners: ((e: RevocationEvent, source: "local" | "feed") => void)[] = [];
  private readonly resyncedListeners: (() => void)[] = [];
  private readonly storeResetListeners: (() => Promise<void>)[] = [];

  constructor(
    private readonly store: Store,
    /** the store's feed: events, acknowledgements, the seq probe */
    private readonly feed: RevocationFeed,
    private readonly cache: RevocationCache,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: RevocationsOptions,
  ) {
    this.purgeTimer = setInterval(() => this.cache.purge(this.clock.now()), PURGE_INTERVAL_MS).unref();
  }

  /** Called for every event applied to the cache (issued here or from the feed), e.g. to disconnect the sockets it covers. */
  onApplied(listener: (e: RevocationEvent, source: "local" | "feed") => void): void {
    this.appliedListeners.push(listener);
  }

  /** Called after the cache was reloaded or merged from the store: every live socket must be re-checked. */
  onResynced(listener: () => void): void {
    this.resyncedListeners.push(listener);
  }

  /** Called once per store data loss found (see RevocationsOptions.onStoreReset). */
  onStoreReset(listener: () => Promise<void>): void {
    this.storeResetListeners.push(listener);
  }

  /** Subscribes, then loads the snapshot: resolves once the node is in sync. */
  async start(): Promise<void> {
    this.unsyncedSince = this.clock.now();
    this.subscription = this.feed.subscribe(
      (e) => this.onFeedEvent(e),
      {
        onLost: () => this.markLost("feed connection lost"),
        onResumed: () => this.requestResync("feed resumed"),
        onRejected: () => this.opts.onFeedRejected?.(),
      },
      { nodeId: this.opts.nodeId },
    );
    await this.subscription.ready;
    await this.resync();
    if (!this.synced) throw new Error("could not load revocation state from the store");
    this.probeTimer = setInterval(() => void this.probeSeq(), SEQ_PROBE_MS).unref();
    const recheckMs = Math.max(RECHECK_MIN_MS, Math.min(RECHECK_MAX_MS, Math.floor(this.opts.maxStalenessMs / 3)));
    this.recheckTimer = setInterval(() => void this.recheckLiveSockets(), recheckMs).unref();
  }

  /**
   * Durable + published first (the store does both atomically), then enforced here without
   * waiting for the echo. Resolves once every node that received the event has confirmed it
   * holds the mark (or after CONFIRM_TIMEOUT_MS): only then may the caller answer 2xx, since a
   * request on another node right after it must already be refused (contract section 5).
   */
  async revoke(change: RevocationChange): Promise<RevocationEvent> {
    const event = await this.store.applyRevocation(change, {
      now: this.clock.now(),
      markTtlMs: this.opts.markTtlMs,
      nodeId: this.opts.nodeId,
    });
    this.heldDuringResync?.push(event);
    this.apply(event, "local");
    const missing = await this.feed.confirmApplied(event, CONFIRM_TIMEOUT_MS);
    if (missing > 0) {
      // A node that got the event but did not confirm in time: stalled, dying, or its
      // confirmation was lost with a dropped connection (then it resyncs anyway).
      this.log.warn({ seq: event.seq, missing }, "revocation not confirmed by every node in time");
      this.opts.onUnconfirmed?.(event, missing);
    }
    return event;
  }

  /**
   * Out of sync, the feed may have missed something: reads the marks that could cover these
   * claims from the store into the cache (merged: they only add refusals). Never throws; an
   * unreachable store leaves the decision to the staleness rule.
   */
  async readMarksFor(c: Pick<AccessClaims, "sub" | "sid" | "jti">): Promise<void> {
    // Known unreachable: do not make every check wait for a command timeout.
    if (this.synced || this.storeUnreachable) return;
    try {
      this.cache.load(await this.store.loadMarksFor({ userId: c.sub, sessionId: c.sid, jti: c.jti }, this.clock.now()), "merge");
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "read-through of revocation marks failed");
    }
  }

  /**
   * Out of sync, the feed may be missing revocations of tokens held by live sockets, which no
   * check re-reads (contract section 5): merge every live mark from the store into the cache
   * (it only adds refusals) and drop the local sockets they cover, with the marks' reasons.
   * Skipped while a resync runs (it sweeps when done) or while the store is known unreachable.
   */
  private async recheckLiveSockets(): Promise<void> {
    if (this.synced || this.closed || this.rechecking || this.resyncing || this.storeUnreachable) return;
    this.rechecking = true;
    const generation = this.resyncGeneration;
    try {
      const snapshot = await this.store.loadMarks(this.clock.now());
      // A resync that started meanwhile loaded newer state (an unban, say): ours may be older.
      if (this.synced || this.closed || generation !== this.resyncGeneration) return;
      this.cache.load(snapshot, "merge");
      this.sweep();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "re-check of live sockets against the store failed");
    } finally {
      this.rechecking = false;
    }
  }

  /** True while checks may rely on the cache: in sync, or out of sync for at most the staleness window. */
  available(): boolean {
    if (this.synced) return true;
    if (!this.startedOnce || this.unsyncedSince === null) return false;
    return this.clock.now() - this.unsyncedSince <= this.opts.maxStalenessMs;
  }

  get inSync(): boolean {
    return this.synced;
  }

  get seq(): number {
    return this.lastSeq;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.purgeTimer);
    clearInterval(this.probeTimer);
    clearInterval(this.recheckTimer);
    clearTimeout(this.resyncTimer);
    await this.subscription?.close();
  }

  private apply(e: RevocationEvent, source: "local" | "feed"): void {
    this.cache.apply(e);
    // One failing listener must not keep the others (or the feed) from running.
    for (const listener of [(ev: RevocationEvent) => this.opts.enforce?.(ev), ...this.appliedListeners]) {
      try {
        listener(e, source);
      } catch (err) {
        this.log.error({ err, seq: e.seq }, "enforcing a revocation failed");
      }
    }
    this.opts.onEventApplied?.(e, source);
  }

  private sweep(): void {
    this.opts.sweep?.();
    for (const listener of this.resyncedListeners) listener();
  }

  private onFeedEvent(e: RevocationEvent): void {
    if (!this.synced && this.seqAtLoss !== null && e.seq <= this.seqAtLoss) {
      // Published after we lost the feed, yet numbered at or below what we had seen: the store
      // restarted empty and its new sequence already caught up with ours, so a seq comparison
      // at resync time alone would miss the loss.
      this.storeWentBack = true;
    }
    if (this.synced && e.seq > this.lastSeq + 1) {
      // A gap: something published between lastSeq and e.seq never reached us. lastSeq stays:
      // the resync takes it from the store, so a forged seq far ahead (anyone with Redis access
      // can publish) cannot leave us believing we are ahead of the store, blind to later gaps.
      this.markLost(`seq gap ${this.lastSeq} -> ${e.seq}`);
      this.requestResync("seq gap");
    } else if (this.synced && e.seq === this.lastSeq + 1) {
      this.lastSeq = e.seq;
    }
    this.heldDuringResync?.push(e);
    // Our own events come back too: applying twice is harmless (marks are
    // idempotent and enforcement re-checks each socket's claims).
    this.apply(e, "feed");
    // The cache holds the mark now: the issuer may answer its caller.
    this.feed.acknowledge(e, this.opts.nodeId);
  }

  /**
   * Behind the store on two probes in a row (one probe could just race an
   * event in flight) means an event was lost: resync. A probe that fails (a
   * hung Redis times out; its connections, the feed's included, stay open and
   * report nothing) puts the node out of sync from when it was sent, so the
   * staleness rule applies; the first probe that succeeds again resyncs.
   */
  private async probeSeq(): Promise<void> {
    if (this.probing || this.resyncing) return;
    this.probing = true;
    const sentAt = this.clock.now();
    let storeSeq: number;
    try {
      storeSeq = await this.feed.currentSeq();
    } catch (err) {
      this.storeUnreachable = true;
      if (this.synced) this.markLost(`store unreachable: ${(err as Error).message}`, sentAt);
      return;
    } finally {
      this.probing = false;
    }
    if (this.storeUnreachable) {
      this.storeUnreachable = false;
      // Back in sync already if the feed came back first and its resync ran.
      if (!this.synced) this.requestResync("store reachable again");
      return;
    }
    if (!this.synced) return;
    const behind = this.probeBehind;
    this.probeBehind = storeSeq > this.lastSeq ? storeSeq : null;
    if (behind !== null && this.lastSeq < behind) {
      this.probeBehind = null;
      this.markLost(`seq probe: store at ${behind}, we are at ${this.lastSeq}`);
      this.requestResync("seq probe");
    }
  }

  /** `since`: when the node stopped being able to vouch for its cache, if earlier than now. */
  private markLost(why: string, since = this.clock.now()): void {
    this.lossGeneration++;
    if (this.synced) {
      this.log.warn({ why }, "revocation feed out of sync");
      this.synced = false;
      this.seqAtLoss = this.lastSeq;
      this.unsyncedSince = since;
    }
  }

  private requestResync(why: string): void {
    this.log.info({ why }, "resyncing revocation state");
    if (this.resyncing) this.resyncAgain = true;
    else void this.resync();
  }

  private runStoreResetHook(): void {
    const hooks = [...(this.opts.onStoreReset ? [this.opts.onStoreReset] : []), ...this.storeResetListeners];
    for (const hook of hooks) {
      hook().catch((err: unknown) => {
        this.log.error({ err: (err as Error).message }, "re-creating this node's records after the store lost its data failed; not retried");
      });
    }
  }

  /** Loads every live mark from the store, then re-checks local sockets against it. */
  private resync(): Promise<void> {
    if (this.resyncing) return this.resyncing;
    const generation = this.lossGeneration;
    this.resyncGeneration++;
    const seqBefore = this.lastSeq;
    this.heldDuringResync = [];
    this.resyncing = (async () => {
      try {
        const snapshot = await this.store.loadMarks(this.clock.now());
        const epochChanged = this.epoch !== null && snapshot.epoch !== this.epoch;
        this.epoch = snapshot.epoch;
        if (epochChanged || snapshot.seq < seqBefore || this.storeWentBack || this.resetRevocationPending) {
          // The store went back in time (a Redis without persistence restarted):
          // keep every mark we hold, they still describe tokens in the wild, and
          // count gaps from the store's new sequence (events held during the load
          // are all from after the loss, so from that new sequence too).
          if (!this.resetRevocationPending) {
            this.log.error({ storeSeq: snapshot.seq, ourSeq: seqBefore }, "store lost revocation state; keeping cached marks, revoking every earlier token");
          }
          this.cache.load(snapshot, "merge");
          this.resetRevocationPending = true;
          this.storeWentBack = false;
        } else {
          this.cache.load(snapshot, "replace");
        }
        // Events that arrived while we loaded may postdate the snapshot: replay them over it.
        for (const e of this.heldDuringResync ?? []) this.cache.apply(e);
        if (this.resetRevocationPending) {
          // The store no longer knows the sessions, users and marks behind the tokens issued
          // before the loss, and nodes started from now on would not know our cached marks:
          // revoke them all, durably in the new store, before reporting ready. Every node that
          // noticed does it, each as it reconnects (within about a second of each other): a
          // token issued in between by a node already back is revoked too, and its client
          // logs in again. Rare and safe, unlike a node that vouched for unknown tokens.
          await this.revoke({ kind: "global", reason: "revoked_all" });
          // Written: cleared now, whatever happens next. Our own reset event (and the other nodes')
          // come back numbered by the new store, below the seq we lost at: no sign of a second loss,
          // and left counted as one they made every later resync revoke every token again.
          this.resetRevocationPending = false;
          this.storeWentBack = false;
          this.seqAtLoss = null;
          // Outside the resync: a failure (a player took the admin's name) is logged once, and
          // neither retried in a loop nor keeping the node out of sync.
          this.runStoreResetHook();
        }
        this.lastSeq = seqAfter(snapshot.seq, this.heldDuringResync ?? []);
        // A loss during the load means the snapshot may predate missed events.
        if (generation === this.lossGeneration) {
          this.synced = true;
          this.startedOnce = true;
          this.unsyncedSince = null;
          this.seqAtLoss = null;
          this.storeUnreachable = false; // it just answered a whole snapshot
          // Set during this resync by our own reset event coming back (its seq is low, the store
          // being new): no loss since means the store did not go back again. Left set, it made
          // the next resync, whatever its cause, revoke every token once more.
          this.storeWentBack = false;
        } else {
          this.resyncAgain = true;
        }
        this.sweep();
        this.log.info({ seq: snapshot.seq, marks: this.cache.size(), synced: this.synced }, "revocation state loaded");
      } catch (err) {
        this.log.warn({ err: (err as Error).message, cause: ((err as Error).cause as Error | undefined)?.message }, "resync failed; retrying");
        this.resyncAgain = true;
      } finally {
        this.resyncing = null;
        this.heldDuringResync = null;
      }
      if (this.resyncAgain && !this.closed) {
        this.resyncAgain = false;
        clearTimeout(this.resyncTimer);
        this.resyncTimer = setTimeout(() => void this.resync(), RESYNC_RETRY_MS).unref();
      }
    })();
    return this.resyncing;
  }
}

/**
 * The seq we are in sync with after a load: the store's, moved on by the events held during the
 * load that follow it without a gap. A held event further ahead (lost ones in between, or a forged
 * seq) is not believed: the seq probe compares with the store and resyncs if events were missed.
 */
function seqAfter(storeSeq: number, held: RevocationEvent[]): number {
  let seq = storeSeq;
  for (const e of [...held].sort((a, b) => a.seq - b.seq)) if (e.seq === seq + 1) seq = e.seq;
  return seq;
}
