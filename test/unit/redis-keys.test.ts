import { describe, expect, it } from "vitest";
import { newRefreshToken, newSessionId, sessionIdOfRefreshToken } from "../../server/auth/tokens";
import { Keys, keySlot, userIdOfSessionId } from "../../server/store/redis-keys";

describe("Redis key layout", () => {
  it("hashes keys to the slots Redis Cluster does (CLUSTER KEYSLOT answers, Redis 7.0.15)", () => {
    const known: [string, number][] = [
      ["gh:u:{abc}", 7638],
      ["gh:seq:{g}", 7233],
      ["foo", 12182],
      ["gh:un:bob", 1663],
      // an empty {} is no hash tag; only the first {...} counts
      ["{}x", 10595],
      ["a{}{b}", 15033],
    ];
    for (const [key, slot] of known) expect([key, keySlot(key)]).toEqual([key, slot]);
  });

  it("puts every key of a user in one slot, and the global state and the feed in another", () => {
    const k = new Keys("gh:");
    const uid = "VIyjRBv1M2hZPFw_FkNYmg";
    const sid = newSessionId(uid);
    const mine = [k.user(uid), k.userSessions(uid), k.session(uid, sid), k.userMark(uid), k.banMark(uid), k.sessionMark(uid, sid), k.jtiMark(uid, "j")];
    expect(new Set(mine.map(keySlot)).size).toBe(1);
    const global = [k.gen, k.globalMark, k.userCut, k.seq, k.epoch, k.channel, k.acks("node-1")];
    expect(new Set(global.map(keySlot))).toEqual(new Set([keySlot("{g}")]));
    expect(() => new Keys("g{h}:")).toThrow();
  });

  it("session ids carry their user's id, and refresh tokens their session id", () => {
    const uid = "VIyjRBv1M2hZPFw_FkNYmg";
    const sid = newSessionId(uid);
    expect(userIdOfSessionId(sid)).toBe(uid);
    expect(sessionIdOfRefreshToken(newRefreshToken(sid).token)).toBe(sid);
    for (const bad of ["missing", `${uid}.short`, `${uid}.${"x".repeat(23)}`, `a.b.${"x".repeat(22)}`, `${"u".repeat(42)}.${"x".repeat(22)}`]) expect(userIdOfSessionId(bad)).toBeNull();
    // the old format (a bare id) is no refresh token any more
    expect(sessionIdOfRefreshToken(`${uid}.${"x".repeat(43)}`)).toBeNull();
  });
});
