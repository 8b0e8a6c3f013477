/**
 * Live sockets by their token's `exp` (whole seconds), with one timer for the earliest: a timer,
 * its closure and its timer list per socket were ~290 bytes of every idle socket's heap.
 */
import { addTo, removeFrom } from "../util/multimap";

/** Longest delay setTimeout honours (2^31-1 ms); longer ones fire after 1 ms, so waits are capped and re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ExpiryQueue<T> {
  private readonly byExp = new Map<number, Set<T>>();
  private timer: NodeJS.Timeout | null = null;
  /** the exp (seconds) the timer is set for */
  private armedFor = Infinity;
  private count = 0;

  constructor(
    private readonly now: () => number,
    private readonly onExpired: (item: T) => void,
  ) {}

  /** Items waiting (tests use it to prove none leak). */
  get size(): number {
    return this.count;
  }

  add(item: T, exp: number): void {
    const before = this.byExp.get(exp)?.size ?? 0;
    addTo(this.byExp, exp, item);
    this.count += (this.byExp.get(exp)?.size ?? 0) - before;
    if (exp < this.armedFor) this.arm(exp);
  }

  /** The timer stays set: if it fires with nothing due, it only re-arms for the next exp. */
  remove(item: T, exp: number): void {
    const set = this.byExp.get(exp);
    if (!set?.has(item)) return;
    removeFrom(this.byExp, exp, item);
    this.count--;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = Infinity;
    this.byExp.clear();
    this.count = 0;
  }

  private arm(exp: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = exp;
    this.timer = setTimeout(this.fire, Math.max(0, Math.min(exp * 1000 - this.now(), MAX_TIMER_MS)));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = null;
    this.armedFor = Infinity;
    const now = this.now();
    let next = Infinity;
    const due: T[] = [];
    // Buckets are whole seconds of live tokens (at most the access-token TTL in seconds).
    for (const [exp, items] of this.byExp) {
      if (exp * 1000 > now) {
        if (exp < next) next = exp;
        continue;
      }
      this.byExp.delete(exp);
      this.count -= items.size;
      due.push(...items);
    }
    if (next < Infinity) this.arm(next);
    for (const item of due) this.onExpired(item);
  };
}
