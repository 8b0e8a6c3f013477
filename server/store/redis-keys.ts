/**
 * RedisStore's key names (the layout is documented once, in redis.ts) and Redis Cluster's key
 * hashing. Every key one script or transaction touches must hash to one slot: a user's keys share
 * the hash tag `{<userId>}`, the global state and the feed share `{g}`.
 */

import { SESSION_ID_PATTERN } from "../../shared/protocol";

/** Session ids carry their user's id (`<userId>.<22 random chars>`) so the store finds the user's slot from the sid alone. */
export function userIdOfSessionId(sessionId: string): string | null {
  return SESSION_ID_PATTERN.test(sessionId) ? sessionId.slice(0, sessionId.lastIndexOf(".")) : null;
}

export class Keys {
  constructor(readonly p: string) {
    // a brace in the prefix would become the hash tag of every key
    if (/[{}]/.test(p)) throw new Error("the Redis key prefix must not contain { or }");
  }

  // ---- one user's slot: {<userId>} ----
  user(uid: string): string {
    return `${this.p}u:{${uid}}`;
  }
  userSessions(uid: string): string {
    return `${this.p}us:{${uid}}`;
  }
  /** a session of `uid`: the caller has checked that the sid names that user (see userIdOfSessionId) */
  session(uid: string, sid: string): string {
    return `${this.p}s:{${uid}}:${sid}`;
  }
  userMark(uid: string): string {
    return `${this.p}m:u:{${uid}}`;
  }
  banMark(uid: string): string {
    return `${this.p}m:b:{${uid}}`;
  }
  sessionMark(uid: string, sid: string): string {
    return `${this.p}m:s:{${uid}}:${sid}`;
  }
  jtiMark(uid: string, jti: string): string {
    return `${this.p}m:j:{${uid}}:${jti}`;
  }
  /** SCAN pattern of every mark, whatever its slot (no glob character can occur in the prefix's escape) */
  get markPattern(): string {
    return `${escapeGlob(this.p)}m:*`;
  }

  // ---- the global slot: {g} ----
  get gen(): string {
    return `${this.p}gen:{g}`;
  }
  get globalMark(): string {
    return `${this.p}m:g:{g}`;
  }
  /** the cutoff of the latest user revocation, for the rest of its second (see USER_CLOCK) */
  get userCut(): string {
    return `${this.p}ucut:{g}`;
  }
  get seq(): string {
    return `${this.p}seq:{g}`;
  }
  get epoch(): string {
    return `${this.p}epoch:{g}`;
  }
  get channel(): string {
    return `${this.p}revocations:{g}`;
  }
  acks(nodeId: string): string {
    return `${this.p}acks:{g}:${nodeId}`;
  }

  // ---- their own slots, one key per call ----
  name(lowerName: string): string {
    return `${this.p}un:${lowerName}`;
  }
  get namePattern(): string {
    return `${escapeGlob(this.p)}un:*`;
  }
  get names(): string {
    return `${this.p}names`;
  }
  get namesBuilt(): string {
    return `${this.p}names:built`;
  }
  get audit(): string {
    return `${this.p}audit`;
  }
}

export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

// ---- Redis Cluster key hashing: CRC16 (XMODEM) of the hash tag, mod 16384 ----
// Not `cluster-key-slot` (what ioredis routes with): it hashes "a{}{b}" by "b", where Redis hashes
// the whole key (an empty first tag means no tag); checked against CLUSTER KEYSLOT in the unit test.

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** The cluster slot of `key` (what CLUSTER KEYSLOT answers): the part in the first non-empty {...}, else the whole key. */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, "utf8");
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc & 16383;
}
