/**
 * Confirmations that the nodes which received a revocation over the feed have
 * applied it. The issuer learns from PUBLISH how many subscribers got the
 * event; each of them (the issuer's own subscriber included) confirms once its
 * cache holds the mark. Only then may the caller hear 2xx: contract section 5,
 * "no request with a covered token succeeds on any node after the 2xx".
 * Counts, not node names: every node confirms an event once, and two nodes
 * that share a NODE_ID by mistake must both count.
 */
interface Entry {
  /** subscribers the publish reached; unknown until the issuing call returns */
  expected?: number;
  confirmed: number;
  waiters: (() => void)[];
  /** drops an entry nobody waits for (a confirmation after the wait gave up) */
  forget: NodeJS.Timeout;
}

const FORGET_AFTER_MS = 30_000;

export class Confirmations {
  private readonly bySeq = new Map<number, Entry>();

  /** The publish of `seq` reached `receivers` subscribers. */
  expect(seq: number, receivers: number): void {
    const e = this.entry(seq);
    e.expected = receivers;
    this.settleIfDone(seq, e);
  }

  /** One receiver has applied `seq` (it may arrive before `expect`). */
  confirm(seq: number): void {
    const e = this.entry(seq);
    e.confirmed++;
    this.settleIfDone(seq, e);
  }

  /** Resolves with how many receivers had not confirmed: 0 once all did, more if `timeoutMs` passed first. */
  wait(seq: number, timeoutMs: number): Promise<number> {
    const e = this.bySeq.get(seq);
    // Settled already (everyone confirmed), or never published by this store: nothing to wait for.
    if (!e || e.expected === undefined) return Promise.resolve(0);
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => this.settle(seq), timeoutMs);
      e.waiters.push(() => {
        clearTimeout(timer);
        resolve(Math.max(0, (e.expected ?? 0) - e.confirmed));
      });
    });
  }

  /** Releases every waiter (the store is closing). */
  clear(): void {
    for (const seq of [...this.bySeq.keys()]) this.settle(seq);
  }

  get size(): number {
    return this.bySeq.size;
  }

  private entry(seq: number): Entry {
    let e = this.bySeq.get(seq);
    if (!e) {
      e = { confirmed: 0, waiters: [], forget: setTimeout(() => this.settle(seq), FORGET_AFTER_MS).unref() };
      this.bySeq.set(seq, e);
    }
    return e;
  }

  private settleIfDone(seq: number, e: Entry): void {
    if (e.expected !== undefined && e.confirmed >= e.expected) this.settle(seq);
  }

  private settle(seq: number): void {
    const e = this.bySeq.get(seq);
    if (!e) return;
    this.bySeq.delete(seq);
    clearTimeout(e.forget);
    for (const w of e.waiters) w();
  }
}
