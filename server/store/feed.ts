/**
 * The revocation feed: how every node hears each revocation in seq order, and how the node that
 * issued one hears back that the others applied it (contract section 5). It stands beside the
 * Store, not inside it: the store makes a revocation durable, numbers it and publishes it in one
 * atomic step (Store.applyRevocation); the feed is the receiving half, the acknowledgement
 * protocol and the sequence probe. Two backends, each built with its store in the composition
 * root (gatehouse.ts): MemoryFeed (one process) and RedisFeed (sharded pub/sub over the
 * RedisStore's Redis). Both pass test/integration/feed.contract.test.ts.
 */
import type { RevocationEvent } from "./store";

export interface FeedSubscription {
  /** resolves once subscribed (events published after this are delivered) */
  ready: Promise<void>;
  close(): Promise<void>;
}

export interface FeedStatusListener {
  /** the subscription dropped: events may be lost until the next `resumed` */
  onLost(): void;
  /** subscribed again; the caller must resync from a snapshot before trusting its cache */
  onResumed(): void;
  /** a message on the feed's channels was malformed or hostile and was dropped, never applied */
  onRejected?(): void;
}

export interface RevocationFeed {
  /**
   * delivers every event published after `ready`, including this node's own;
   * with `nodeId`, also receives the confirmations other nodes send for this node's events
   */
  subscribe(onEvent: (e: RevocationEvent) => void, status: FeedStatusListener, opts?: { nodeId?: string }): FeedSubscription;
  /** tells the event's issuer that the node `nodeId` has applied it (received over the feed) */
  acknowledge(e: RevocationEvent, nodeId: string): void;
  /**
   * for an event this node's store just applied: resolves once every node that received it over
   * the feed has acknowledged it, or after `timeoutMs`, with how many had not
   */
  confirmApplied(e: RevocationEvent, timeoutMs: number): Promise<number>;
  /** the seq of the latest revocation applied (a cheap probe for missed feed events) */
  currentSeq(): Promise<number>;
  /** closes every subscription (none reports `lost` on the way out) and releases confirmApplied waiters */
  close(): Promise<void>;
}
