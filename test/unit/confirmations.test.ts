import { describe, expect, it } from "vitest";
import { Confirmations } from "../../server/store/confirmations";

describe("Confirmations (issuer waits for every receiver of a revocation)", () => {
  it("resolves 0 once every receiver confirmed, and forgets the entry", async () => {
    const c = new Confirmations();
    c.expect(7, 3);
    const waiting = c.wait(7, 10_000);
    c.confirm(7);
    c.confirm(7);
    let done = false;
    void waiting.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false); // one receiver still missing
    c.confirm(7);
    await expect(waiting).resolves.toBe(0);
    expect(c.size).toBe(0);
  });

  it("counts confirmations that arrive before the publish result", async () => {
    const c = new Confirmations();
    c.confirm(1);
    c.confirm(1);
    c.expect(1, 2);
    await expect(c.wait(1, 10_000)).resolves.toBe(0);
    expect(c.size).toBe(0);
  });

  it("a publish nobody received needs no confirmation", async () => {
    const c = new Confirmations();
    c.expect(3, 0);
    await expect(c.wait(3, 10_000)).resolves.toBe(0);
  });

  it("reports how many never confirmed once the timeout passes; a late one is harmless", async () => {
    const c = new Confirmations();
    c.expect(5, 3);
    c.confirm(5);
    await expect(c.wait(5, 20)).resolves.toBe(2);
    expect(c.size).toBe(0);
    c.confirm(5); // late: kept only until it is forgotten, never waited on
    await expect(c.wait(5, 10_000)).resolves.toBe(0);
  });

  it("clear releases every waiter", async () => {
    const c = new Confirmations();
    c.expect(9, 2);
    const waiting = c.wait(9, 60_000);
    c.clear();
    await expect(waiting).resolves.toBe(2);
    expect(c.size).toBe(0);
  });
});
