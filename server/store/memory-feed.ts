/**
 * MemoryFeed: the revocation feed of embedded (single-process) mode. MemoryStore publishes into it
 * each event it has applied, and it hands every subscriber its own copy at once, in seq order.
 *
 * One process is one node: the issuer applied its event before anyone could ask, and no other node
 * exists to hear from, so the acknowledgement protocol has nothing to carry (`acknowledge` sends
 * nothing, `confirmApplied` resolves 0). In-process delivery cannot be lost, so `status` never fires.
 */
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { FeedStatusListener, FeedSubscription, RevocationFeed } from "./feed";
import type { RevocationEvent } from "./store";

export class MemoryFeed implements RevocationFeed {
  private readonly subscribers = new Set<(e: RevocationEvent) => void>();
  /** the seq of the latest event published: every revocation the store applies is */
  private seq = 0;
  private closed = false;

  /** Called by MemoryStore once `e` is applied. */
  publish(e: RevocationEvent): void {
    this.seq = e.seq;
    for (const fn of [...this.subscribers]) {
      try {
        fn(structuredClone(e));
      } catch {
        // A subscriber's failure is its own (Revocations logs its errors); others still get the event.
      }
    }
  }

  subscribe(onEvent: (e: RevocationEvent) => void, _status: FeedStatusListener): FeedSubscription {
    if (this.closed) {
      // As on Redis: a closed feed delivers nothing, so it must not claim to be subscribed.
      const ready = Promise.reject(new GatehouseError(ErrorCode.REVOCATION_UNAVAILABLE));
      ready.catch(() => {});
      return { ready, close: async () => {} };
    }
    this.subscribers.add(onEvent);
    return {
      ready: Promise.resolve(),
      close: async () => {
        this.subscribers.delete(onEvent);
      },
    };
  }

  acknowledge(_e: RevocationEvent, _nodeId: string): void {}

  async confirmApplied(_e: RevocationEvent, _timeoutMs: number): Promise<number> {
    return 0;
  }

  async currentSeq(): Promise<number> {
    return this.seq;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
  }
}
