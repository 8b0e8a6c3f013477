/**
 * The 20-second soak of `npm run soak` (fewer players, same judging): three
 * child-process nodes on their own Redis, players moving, chatting and
 * refreshing, revocations of every kind; nothing missed, nothing wrongly
 * dropped, no revoked token admitted anywhere afterwards.
 */
import { describe, expect, it } from "vitest";
import { KINDS, runSoak } from "../../scripts/lib/soak";
import { formatResult } from "../../scripts/lib/soak-report";

describe("soak (20 s)", () => {
  it("every covered connection dropped with its reason, nobody else, no revoked token admitted; marks expire", async () => {
    const r = await runSoak({ bots: 150, rate: 10, durationSec: 20, accessTtlSec: 20, waitForTtl: true });
    console.log(formatResult(r));
    expect({ missed: r.missed, wronglyDropped: r.wronglyDropped, admitted: r.admitted }).toEqual({ missed: 0, wronglyDropped: 0, admitted: 0 });
    // Every kind of the steady stream happened (revoke_all is the opt-in final phase).
    for (const kind of KINDS.filter((k) => k !== "revoke_all")) expect(r.revocations.byKind[kind] ?? 0, kind).toBeGreaterThan(0);
    // A covered connection whose token expired first (a starved bot) is reported, not judged.
    expect(r.droppedRight + r.expiredBeforeVerdict).toBe(r.covered);
    expect(r.traffic.inBandRefreshes).toBeGreaterThan(0);
    // Marks live one access lifetime: gone once it has passed after the last revocation.
    expect(r.redis.marksEnd).toBe(0);
    expect(r.ok).toBe(true);
  }, 180_000);
});
