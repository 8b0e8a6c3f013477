/**
 * Faults in the middle of a short soak (the judging of `npm run soak`): each
 * must leave nothing missed, nothing wrongly dropped (transport closes on a
 * node the fault took down excepted) and no revoked token admitted.
 */
import { describe, expect, it } from "vitest";
import { runSoak, type Fault } from "../../scripts/lib/soak";
import { formatResult } from "../../scripts/lib/soak-report";

async function soakWith(faults: Fault[], durationSec = 16) {
  const r = await runSoak({ bots: 100, rate: 8, dropDeadlineMs: 10_000, durationSec, accessTtlSec: 30, faults, waitForTtl: false });
  console.log(formatResult(r));
  expect(r.faults.map((f) => f.fault)).toEqual(faults);
  expect(r.revocations.issued).toBeGreaterThan(0);
  expect({ missed: r.missed, wronglyDropped: r.wronglyDropped, admitted: r.admitted }).toEqual({ missed: 0, wronglyDropped: 0, admitted: 0 });
  return r;
}

describe("soak under faults", () => {
  it("subscriber connections cut (CLIENT KILL TYPE pubsub)", async () => {
    await soakWith(["pubsub-kill"]);
  }, 180_000);

  it("a node SIGKILLed (and restarted), another SIGSTOPped for 3 s then resumed", async () => {
    const r = await soakWith(["node-kill", "node-stop"], 20);
    expect(r.nodes.some((n) => n.restarted)).toBe(true);
  }, 180_000);

  it("Redis restarted with AOF", async () => {
    await soakWith(["redis-restart"]);
  }, 180_000);

  it("feed-only outage: a proxy refuses SUBSCRIBE for 8 s while every other command passes", async () => {
    const r = await soakWith(["subscribe-refused"], 20);
    // The outage really happened: the nodes tried to subscribe again and were refused.
    expect(Number(/(\d+) subscriptions refused/.exec(r.faults[0]!.detail)?.[1])).toBeGreaterThan(0);
  }, 180_000);
});
