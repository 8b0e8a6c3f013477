/** ExpiryQueue: one timer for every live socket's token exp (server/realtime/expiry.ts). */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ExpiryQueue } from "../../server/realtime/expiry";

describe("ExpiryQueue", () => {
  beforeEach(() => void vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => void vi.useRealTimers());

  it("expires items at their exp second, in order, and never an item removed or moved before", () => {
    const expired: string[] = [];
    const q = new ExpiryQueue<string>(() => Date.now(), (x) => expired.push(x));
    q.add("late", 1003);
    q.add("early", 1001);
    q.add("gone", 1001);
    q.add("moved", 1002);
    q.remove("gone", 1001);
    q.remove("moved", 1002);
    q.add("moved", 1005); // a refresh moves it to its new exp
    expect(q.size).toBe(3);
    vi.advanceTimersByTime(999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(["early"]);
    vi.advanceTimersByTime(2000);
    expect(expired).toEqual(["early", "late"]);
    expect(q.size).toBe(1);
    vi.advanceTimersByTime(2000);
    expect(expired).toEqual(["early", "late", "moved"]);
    expect(q.size).toBe(0);
  });

  it("waits beyond setTimeout's 2^31-1 ms limit in capped steps instead of firing at once", () => {
    const expired: string[] = [];
    const q = new ExpiryQueue<string>(() => Date.now(), (x) => expired.push(x));
    const thirtyDays = 30 * 24 * 3600;
    q.add("long", 1000 + thirtyDays);
    vi.advanceTimersByTime(2 ** 31 - 1);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(thirtyDays * 1000 - (2 ** 31 - 1));
    expect(expired).toEqual(["long"]);
    q.close();
  });
});
