/**
 * The mark rules (server/revocation/mark-rules.ts), and their Lua twins run on a real Redis with
 * EVAL on the same inputs: the TS and the Lua computations must agree, value for value.
 */
import { describe, expect, it } from "vitest";
import { banMarkExpiry, globalCutoff, MARK_RULES_LUA, markExpiry, nextSecond } from "../../server/revocation/mark-rules";
import { useRedis } from "../helpers/redis-fixture";

describe("mark rules", () => {
  it("nextSecond: the next whole second, even on a second's boundary", () => {
    expect(nextSecond(1_700_000_000_000)).toBe(1_700_000_001);
    expect(nextSecond(1_700_000_000_999)).toBe(1_700_000_001);
    expect(nextSecond(1_700_000_001_000)).toBe(1_700_000_002);
  });

  it("globalCutoff only moves forward, past the previous revoke-all and a user cutoff of its second", () => {
    const now = 1_700_000_000_500;
    expect(globalCutoff(now, 0)).toBe(1_700_000_001);
    // a second revoke-all in the same second still cuts off tokens issued after the first
    expect(globalCutoff(now, 1_700_000_001)).toBe(1_700_000_002);
    expect(globalCutoff(now, 1_700_000_005)).toBe(1_700_000_006);
    expect(globalCutoff(now, 0, 1_700_000_001)).toBe(1_700_000_002);
    // an old cutoff does not hold a new one back
    expect(globalCutoff(now, 1_600_000_000, 1_600_000_000)).toBe(1_700_000_001);
  });

  it("markExpiry and banMarkExpiry: a ban mark never outlives the marks, nor the ban", () => {
    expect(markExpiry(1_000, 900_000)).toBe(901_000);
    expect(banMarkExpiry(null, 901_000)).toBe(901_000);
    expect(banMarkExpiry(500_000, 901_000)).toBe(500_000);
    expect(banMarkExpiry(2_000_000, 901_000)).toBe(901_000);
  });
});

describe("mark rules in Lua (EVAL on a real Redis) agree with the TS ones", () => {
  const redis = useRedis("single");

  // Strings out of Lua: a Lua number reply is truncated to an integer, which would hide a fraction.
  const evalRule = async (call: string, args: number[]): Promise<number> =>
    Number(await redis.admin().eval(`${MARK_RULES_LUA}\nreturn string.format('%.3f', ${call})`, 0, ...args));

  const times = [0, 999, 1_000, 1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_999, 1_799_999_999_999, 4_102_444_799_999];

  it("nextSecond", async () => {
    for (const now of times) expect(await evalRule("nextSecond(tonumber(ARGV[1]))", [now])).toBe(nextSecond(now));
  });

  it("globalCutoff", async () => {
    for (const now of times) {
      const s = Math.floor(now / 1000);
      for (const [prev, user] of [
        [0, 0],
        [s, 0],
        [s + 1, 0],
        [s + 7, s + 3],
        [0, s + 1],
        [s - 100, s + 9],
      ] as const) {
        const lua = await evalRule("globalCutoff(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))", [now, prev, user]);
        expect(lua, `now ${now} prev ${prev} user ${user}`).toBe(globalCutoff(now, prev, user));
      }
    }
  });

  it("markExpiry", async () => {
    for (const now of times) {
      for (const ttl of [0, 1, 60_000, 86_400_000]) {
        expect(await evalRule("markExpiry(tonumber(ARGV[1]), tonumber(ARGV[2]))", [now, ttl])).toBe(markExpiry(now, ttl));
      }
    }
  });
});
