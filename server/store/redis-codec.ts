/** RedisStore's encodings: records <-> hash fields, stored marks and feed events <-> JSON. */
import { z } from "zod";
import { RevocationReason } from "../../shared/protocol";
import type { Ban, Marks, RevocationEvent, SessionRecord, UserRecord } from "./store";

export function userFields(u: UserRecord): (string | number)[] {
  const f: (string | number)[] = [
    "id", u.id,
    "username", u.username,
    "role", u.role,
    "guest", u.guest ? "1" : "0",
    "createdAt", u.createdAt,
    "version", u.version,
    "tokenValidAfter", u.tokenValidAfter,
  ];
  if (u.passwordHash !== null) f.push("passwordHash", u.passwordHash);
  if (u.ban) f.push("ban", JSON.stringify(u.ban));
  return f;
}

export function parseUser(h: Record<string, string>): UserRecord | null {
  if (!h.id || !h.username) return null;
  let ban: Ban | null = null;
  if (h.ban) {
    try {
      ban = JSON.parse(h.ban) as Ban;
    } catch {
      ban = null;
    }
  }
  return {
    id: h.id,
    username: h.username,
    role: h.role === "admin" ? "admin" : "player",
    passwordHash: h.passwordHash ?? null,
    guest: h.guest === "1",
    createdAt: Number(h.createdAt ?? 0),
    version: Number(h.version ?? 0),
    tokenValidAfter: Number(h.tokenValidAfter ?? 0),
    ban,
  };
}

/** A live session; null for a missing one or a revoked one's tombstone. */
export function parseSession(h: Record<string, string>): SessionRecord | null {
  if (!h.id || !h.userId || h.state === "revoked") return null;
  return {
    id: h.id,
    userId: h.userId,
    device: h.device ?? "",
    createdAt: Number(h.createdAt),
    lastSeenAt: Number(h.lastSeenAt),
    expiresAt: Number(h.expiresAt),
  };
}

export function pairsToObject(reply: unknown): Record<string, string> {
  const a = asStrings(reply);
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < a.length; i += 2) o[a[i]!] = a[i + 1]!;
  return o;
}

/** A Lua array reply as strings (nil entries become undefined). */
export function asStrings(reply: unknown): (string | undefined)[] {
  if (!Array.isArray(reply)) throw new Error("unexpected script reply");
  return reply.map((v: unknown) => (v === null || v === undefined ? undefined : String(v)));
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const optStr = (v: unknown): string | undefined => (isStr(v) ? v : undefined);

/** Adds one stored mark (JSON) to `snap` if well-formed and alive at `now`. */
export function addMark(snap: Marks, raw: string, now: number): void {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return;
  }
  if (!m || typeof m !== "object" || !isNum(m.expiresAt) || m.expiresAt <= now) return;
  const expiresAt = m.expiresAt;
  const reason = optStr(m.reason);
  switch (m.t) {
    case "j":
      if (isStr(m.jti)) snap.jtis.push({ jti: m.jti, expiresAt, reason });
      break;
    case "s":
      if (isStr(m.sessionId)) snap.sessions.push({ sessionId: m.sessionId, expiresAt, reason });
      break;
    case "u":
      if (isStr(m.userId) && isNum(m.version) && isNum(m.tokenValidAfter)) {
        snap.users.push({ userId: m.userId, version: m.version, tokenValidAfter: m.tokenValidAfter, expiresAt, reason });
      }
      break;
    case "b":
      if (isStr(m.userId) && (m.until === null || isNum(m.until))) snap.bans.push({ userId: m.userId, until: m.until, expiresAt });
      break;
    case "g":
      if (isNum(m.tokenValidAfter)) snap.global = { tokenValidAfter: m.tokenValidAfter, expiresAt };
      break;
  }
}

// ---- feed messages ----
// Anyone who can reach Redis can PUBLISH on the channel: a message is untrusted input. It is parsed
// only if small, checked field by field, and dropped (never applied) otherwise.

/** Far above any real event (ids of 128 chars, a note and a ban reason of 200 chars, JSON-escaped). */
export const MAX_FEED_MESSAGE_CHARS = 8192;
/** Epoch ms bounds for times on the feed: 2000-01-01 .. 2200-01-01 (a clock or a value gone wrong). */
const MIN_TIME_MS = Date.UTC(2000, 0, 1);
const MAX_TIME_MS = Date.UTC(2200, 0, 1);
/** A ban may run as far as an ISO date can say (the admin API accepts any future date). */
const MAX_BAN_UNTIL_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const timeMs = z.number().int().min(MIN_TIME_MS).max(MAX_TIME_MS);
const id = z.string().min(1).max(128);
/** An admin's free text: AdminReasonBody / BanBody bound it to 200 characters. */
const note = z.string().max(200);
const reasons = [...Object.values(RevocationReason), "unbanned"] as const;

export const RevocationEventSchema = z
  .object({
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    kind: z.enum(["session", "user", "unban", "global"]),
    userId: id.optional(),
    sessionId: id.optional(),
    jti: id.optional(),
    tokenValidAfter: z
      .number()
      .int()
      .min(0)
      .max(MAX_TIME_MS / 1000)
      .optional(),
    version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    ban: z
      .object({
        until: z.number().int().min(MIN_TIME_MS).max(MAX_BAN_UNTIL_MS).nullable(),
        reason: note.optional(),
      })
      .optional(),
    reason: z.enum(reasons),
    note: note.optional(),
    at: timeMs,
    expiresAt: timeMs,
    nodeId: z.string().min(1).max(256),
  })
  // Each kind names what it covers; without it the event would cover nothing or the wrong thing.
  .refine((e) => (e.kind === "session" ? e.sessionId !== undefined : e.kind === "global" ? e.tokenValidAfter !== undefined : e.userId !== undefined), {
    message: "the event lacks what its kind covers",
  });

// The schema must describe RevocationEvent exactly: a field added there and not here would be stripped.
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const schemaMatchesEvent: SameKeys<z.infer<typeof RevocationEventSchema>, RevocationEvent> = true;
void schemaMatchesEvent;

/** Validates a feed message; null for anything that is not a well-formed RevocationEvent. */
export function parseEvent(message: string): RevocationEvent | null {
  if (message.length > MAX_FEED_MESSAGE_CHARS) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(message);
  } catch {
    return null;
  }
  const parsed = RevocationEventSchema.safeParse(raw);
  return parsed.success ? (parsed.data as RevocationEvent) : null;
}

/** A confirmation on the acks channel: the seq of one of our events, as a decimal string; null otherwise. */
export function parseAck(message: string): number | null {
  if (!/^[1-9][0-9]{0,15}$/.test(message)) return null;
  const seq = Number(message);
  return Number.isSafeInteger(seq) ? seq : null;
}
