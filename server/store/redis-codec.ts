/** RedisStore's encodings: records <-> hash fields, stored marks and feed events <-> JSON. */
import type { Ban, Marks, RevocationEvent, SessionRecord, UserRecord } from "./store";

const EVENT_KINDS = new Set(["session", "user", "unban", "global"]);

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

/** Validates a feed message; null for anything that is not a RevocationEvent. */
export function parseEvent(message: string): RevocationEvent | null {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(message) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (!e || typeof e !== "object") return null;
  const ok =
    isNum(e.seq) &&
    isStr(e.kind) &&
    EVENT_KINDS.has(e.kind) &&
    isStr(e.reason) &&
    isNum(e.at) &&
    isNum(e.expiresAt) &&
    isStr(e.nodeId) &&
    (e.userId === undefined || isStr(e.userId)) &&
    (e.sessionId === undefined || isStr(e.sessionId)) &&
    (e.jti === undefined || isStr(e.jti)) &&
    (e.tokenValidAfter === undefined || isNum(e.tokenValidAfter)) &&
    (e.version === undefined || isNum(e.version)) &&
    (e.note === undefined || isStr(e.note));
  return ok ? (e as unknown as RevocationEvent) : null;
}
