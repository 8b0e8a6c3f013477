/** The revocation feed's message validation: anything published on the channel is untrusted input. */
import { describe, expect, it } from "vitest";
import { MAX_FEED_MESSAGE_CHARS, parseAck, parseEvent } from "../../server/store/redis-codec";

const NOW = Date.UTC(2026, 10, 24);
const good = {
  seq: 42,
  kind: "user",
  userId: "u1",
  version: 3,
  tokenValidAfter: Math.ceil(NOW / 1000) + 1,
  reason: "banned",
  ban: { until: null, reason: "cheating" },
  note: "cheating",
  at: NOW,
  expiresAt: NOW + 15 * 60_000,
  nodeId: "node-1",
};
const parse = (patch: Record<string, unknown>) => parseEvent(JSON.stringify({ ...good, ...patch }));

describe("parseEvent", () => {
  it("accepts every kind of event the store publishes", () => {
    expect(parse({})).toEqual(good);
    expect(parse({ kind: "session", sessionId: "s1", jti: "j1", reason: "logout", version: undefined, tokenValidAfter: undefined, ban: undefined })).not.toBeNull();
    expect(parse({ kind: "unban", reason: "unbanned", ban: undefined })).not.toBeNull();
    expect(parse({ kind: "global", userId: undefined, reason: "revoked_all", ban: undefined })).not.toBeNull();
    expect(parse({ ban: { until: Date.UTC(9999, 0, 1) } })).not.toBeNull();
  });

  it.each<[string, Record<string, unknown>]>([
    ["seq 1e300", { seq: 1e300 }],
    ["seq above 2^53", { seq: 2 ** 53 }],
    ["seq -1", { seq: -1 }],
    ["seq 0", { seq: 0 }],
    ["seq 1.5", { seq: 1.5 }],
    ["seq as a string", { seq: "42" }],
    ["an unknown kind", { kind: "everyone" }],
    ["an unknown reason", { reason: "because" }],
    ["expiresAt far in the past", { expiresAt: 1 }],
    ["expiresAt far in the future", { expiresAt: 1e15 }],
    ["at not a number", { at: "now" }],
    ["version 2^60", { version: 2 ** 60 }],
    ["version -1", { version: -1 }],
    ["tokenValidAfter in ms instead of s", { tokenValidAfter: NOW * 1000 }],
    ["ban.until far in the future", { ban: { until: 1e300 } }],
    ["an id of 10,000 chars", { userId: "x".repeat(10_000) }],
    ["an empty id", { userId: "" }],
    ["a note of 1,000 chars", { note: "n".repeat(1000) }],
    ["no nodeId", { nodeId: undefined }],
    ["a user event without its user", { userId: undefined }],
    ["a session event without its session", { kind: "session", sessionId: undefined }],
    ["a global event without its cutoff", { kind: "global", tokenValidAfter: undefined }],
  ])("drops %s", (_what, patch) => {
    expect(parse(patch)).toBeNull();
  });

  it("drops what is not a JSON object, and a body too large to be an event before parsing it", () => {
    for (const m of ["", "not json", "null", "42", "[]", '"x"', "{"]) expect(parseEvent(m)).toBeNull();
    const huge = JSON.stringify({ ...good, pad: "x".repeat(1024 * 1024) });
    expect(huge.length).toBeGreaterThan(MAX_FEED_MESSAGE_CHARS);
    expect(parseEvent(huge)).toBeNull();
  });

  it("keeps no field it does not know", () => {
    expect(parse({ __proto__: { polluted: true }, extra: 1 })).toEqual(good);
  });
});

describe("parseAck", () => {
  it("accepts a positive safe integer in decimal only", () => {
    expect(parseAck("7")).toBe(7);
    expect(parseAck(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    for (const m of ["", "0", "-1", "1e300", "1.5", " 7", "0x10", "07", "99999999999999999", "x".repeat(1e6)]) expect(parseAck(m), m).toBeNull();
  });
});
