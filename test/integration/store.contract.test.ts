/**
 * The Store contract (server/store/store.ts), run unchanged against both
 * backends: MemoryStore, and RedisStore on a redis-server this file starts.
 * What applyRevocation publishes, as the feed delivers it, is the feed
 * contract's (feed.contract.test.ts).
 *
 * Times: every `now` is real time (Redis TTLs are real time). Where a test
 * needs time to pass, `passTime` lets it pass as the backend sees it: memory
 * follows the times callers show it, Redis needs the wall clock to move.
 */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { AuditEntry } from "../../shared/protocol";
import { MemoryStore } from "../../server/store/memory";
import { RedisStore } from "../../server/store/redis";
import { REFRESH_TRAIL, type NewSession, type Rotation, type SessionRecord, type Store, type UserRecord } from "../../server/store/store";
import { codeOf } from "../helpers/errors";
import { useRedis } from "../helpers/redis-fixture";
import { waitFor } from "../helpers/wait";

interface Harness {
  /** a fresh, empty store */
  create(): Promise<Store>;
  /** lets time pass beyond epoch-ms `t`, as the backend sees it */
  passTime(store: Store, t: number): Promise<void>;
  /** how much is stored (memory: record and mark counts; Redis: DBSIZE) */
  stateSize(store: Store): Promise<number>;
}

const CTX = { markTtlMs: 60_000, nodeId: "node-test" };
const HOUR = 3_600_000;
let counter = 0;
const uid = (p: string) => `${p}${++counter}x${Math.random().toString(36).slice(2, 8)}`;

function user(over: Partial<UserRecord> = {}): UserRecord {
  const id = over.id ?? uid("u");
  return {
    id,
    username: `name_${id}`,
    role: "player",
    passwordHash: "scrypt$hash",
    guest: false,
    createdAt: Date.now(),
    version: 0,
    tokenValidAfter: 0,
    ban: null,
    ...over,
  };
}

/** a session id of `userId`'s, as newSessionId makes them */
const sid = (userId: string) => `${userId}.${randomBytes(16).toString("base64url")}`;

/** a SHA-256 hex digest, as the store receives refresh hashes */
const digest = () => randomBytes(32).toString("hex");

/** A session to create; `refresh.hash` is its first refresh token's hash. */
function session(userId: string, over: Partial<NewSession> = {}): { session: NewSession; refresh: { hash: string } } {
  const now = over.now ?? Date.now();
  const s: NewSession = { id: sid(userId), userId, device: "test", refreshHash: digest(), now, expiresAt: now + HOUR, ...over };
  return { session: s, refresh: { hash: s.refreshHash } };
}

/** The record a created session reads back as. */
function recordOf(s: NewSession): SessionRecord {
  return { id: s.id, userId: s.userId, device: s.device, createdAt: s.now, lastSeenAt: s.now, expiresAt: s.expiresAt };
}

/** Presenting `hash` at `now`; its successor gets a fresh hash. */
function rotation(hash: string, now: number, over: Partial<Rotation> = {}): Rotation {
  return { presentedHash: hash, nextHash: digest(), nextSealed: `sealed:${uid("x")}`, now, expiresAt: now + HOUR, graceMs: 0, ...over };
}

function contract(h: Harness): void {
  let store: Store;

  beforeEach(async () => {
    store = await h.create();
  });
  afterEach(async () => {
    await store.close();
  });

  /** Creates the session (the user's version must be `version`) and returns its record. */
  async function open(s: NewSession, version = 0): Promise<SessionRecord> {
    const r = await store.createSession(s, version);
    if (r.status !== "ok") throw new Error(`session not created: ${r.status}`);
    return r.session;
  }

  async function newUserWithSession(): Promise<{ u: UserRecord; s: SessionRecord; r: { hash: string } }> {
    const u = user();
    await store.createUser(u);
    const { session: ns, refresh: r } = session(u.id);
    return { u, s: await open(ns), r };
  }

  describe("users", () => {
    it("creates and reads users by id and by username, case-insensitively", async () => {
      const u = user({ username: "Alice_One", ban: { until: null, reason: "x" } });
      const guest = user({ username: "guest-abc", passwordHash: null, guest: true });
      await store.createUser(u);
      await store.createUser(guest);
      expect(store.kind).toMatch(/^(memory|redis)$/);
      expect(await store.getUser(u.id)).toEqual(u);
      expect(await store.getUser(guest.id)).toEqual(guest);
      expect(await store.getUserByUsername("alice_one")).toEqual(u);
      expect(await store.getUserByUsername("ALICE_ONE")).toEqual(u);
      expect(await store.getUser("nobody")).toBeNull();
      expect(await store.getUserByUsername("nobody")).toBeNull();
    });

    it("refuses a taken username (any case) with USERNAME_TAKEN", async () => {
      await store.createUser(user({ username: "Bob" }));
      expect(await codeOf(store.createUser(user({ username: "bOB" })))).toBe(ErrorCode.USERNAME_TAKEN);
    });

    it("lets exactly one of two concurrent creates of the same name win", async () => {
      const a = user({ username: "Carol" });
      const b = user({ username: "carol" });
      const results = await Promise.allSettled([store.createUser(a), store.createUser(b)]);
      const won = results.filter((r) => r.status === "fulfilled");
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect((lost[0]!.reason as GatehouseError).code).toBe(ErrorCode.USERNAME_TAKEN);
      const winner = results[0]!.status === "fulfilled" ? a : b;
      expect((await store.getUserByUsername("CAROL"))?.id).toBe(winner.id);
    });

    it("upserts the admin idempotently (same id, new password, role admin)", async () => {
      const first = await store.upsertAdmin(user({ username: "Admin", role: "admin", passwordHash: "scrypt$1" }));
      expect(first.role).toBe("admin");
      const second = await store.upsertAdmin(user({ username: "admin", role: "admin", passwordHash: "scrypt$2" }));
      expect(second.id).toBe(first.id);
      expect(second.passwordHash).toBe("scrypt$2");
      expect(second.role).toBe("admin");
      expect(await store.getUser(first.id)).toEqual(second);
      // from several nodes at once: still one admin
      const many = await Promise.all([1, 2, 3].map((i) => store.upsertAdmin(user({ username: "ADMIN", role: "admin", passwordHash: `scrypt$${i}` }))));
      expect(new Set(many.map((m) => m.id))).toEqual(new Set([first.id]));
    });

    it("searches registered users by username prefix, case-insensitively, in name order, up to a limit; never guests", async () => {
      const names = ["Mia_2", "mia_1", "MIAB", "Mi", "nomia"];
      const made = new Map<string, UserRecord>();
      for (const username of names) {
        const u = user({ username });
        made.set(username, u);
        await store.createUser(u);
      }
      await store.createUser(user({ username: "guest-mia", passwordHash: null, guest: true }));
      const admin = await store.upsertAdmin(user({ username: "MiaAdmin", role: "admin", passwordHash: "scrypt$a" }));

      const found = await store.searchUsers("mIA", 10);
      expect(found.map((u) => u.username)).toEqual(["mia_1", "Mia_2", "MiaAdmin", "MIAB"]);
      expect(found[0]).toEqual(made.get("mia_1"));
      expect(found[2]).toEqual(admin);
      expect((await store.searchUsers("mia", 2)).map((u) => u.username)).toEqual(["mia_1", "Mia_2"]);
      expect((await store.searchUsers("", 100)).map((u) => u.username)).toEqual(["Mi", "mia_1", "Mia_2", "MiaAdmin", "MIAB", "nomia"]);
      expect(await store.searchUsers("guest-", 10)).toEqual([]);
      expect(await store.searchUsers("zed", 10)).toEqual([]);
      // the admin, upserted again, is listed once
      await store.upsertAdmin(user({ username: "miaadmin", role: "admin", passwordHash: "scrypt$b" }));
      expect((await store.searchUsers("miaa", 10)).map((u) => u.id)).toEqual([admin.id]);
    });

    it("search reads the user's current record (a ban shows)", async () => {
      const u = user({ username: "Banme" });
      await store.createUser(u);
      await store.applyRevocation({ kind: "user", userId: u.id, reason: "banned", ban: { until: null, reason: "cheating" } }, { now: Date.now(), ...CTX });
      expect((await store.searchUsers("banme", 1))[0]?.ban).toEqual({ until: null, reason: "cheating" });
    });

    it("upsertAdmin never promotes a player who holds the name, and resets an existing admin's password", async () => {
      const player = user({ username: "boss" });
      await store.createUser(player);
      await expect(store.upsertAdmin(user({ username: "Boss", role: "admin", passwordHash: "scrypt$b" }))).rejects.toMatchObject({ code: "USERNAME_TAKEN" });
      expect(await store.getUser(player.id)).toMatchObject({ role: "player", passwordHash: player.passwordHash });

      const first = await store.upsertAdmin(user({ username: "chief", role: "admin", passwordHash: "scrypt$1" }));
      const again = await store.upsertAdmin(user({ username: "CHIEF", role: "admin", passwordHash: "scrypt$2" }));
      expect(again).toMatchObject({ id: first.id, role: "admin", passwordHash: "scrypt$2" });
    });
  });

  describe("sessions and refresh tokens", () => {
    it("creates, reads and lists sessions newest first, only the user's own", async () => {
      const u = user();
      const other = user();
      await store.createUser(u);
      await store.createUser(other);
      const now = Date.now();
      const older = session(u.id, { now: now - 2000, expiresAt: now + HOUR });
      const newer = session(u.id, { now: now - 1000, expiresAt: now + HOUR });
      const theirs = session(other.id);
      for (const x of [older, newer, theirs]) expect(await open(x.session)).toEqual(recordOf(x.session));

      expect(await store.getSession(older.session.id)).toEqual(recordOf(older.session));
      expect(await store.getSession("missing")).toBeNull();
      const list = await store.listSessions(u.id, now);
      expect(list.map((s) => s.id)).toEqual([newer.session.id, older.session.id]);
      expect(list[0]).toEqual(recordOf(newer.session));
      expect(await store.listSessions("nobody", now)).toEqual([]);
      // sessions past their expiry are not live
      expect(await store.listSessions(u.id, now + 2 * HOUR)).toEqual([]);
    });

    it("creates a session only while the user's version is the one the caller saw, and reads the token basis", async () => {
      const u = user({ tokenValidAfter: 0 });
      await store.createUser(u);
      const now = Date.now();
      const first = await store.createSession(session(u.id).session, 0);
      expect(first).toMatchObject({ status: "ok", basis: { username: u.username, role: "player", version: 0, notBeforeIat: 0 } });
      if (first.status === "ok") expect(Math.abs(first.basis.at - now)).toBeLessThan(5_000);
      // a revocation lands between the password check (version 0) and the session step
      const e = await store.applyRevocation({ kind: "user", userId: u.id, reason: "password_changed" }, { now, ...CTX });
      const late = session(u.id);
      expect(await store.createSession(late.session, 0)).toEqual({ status: "stale" });
      expect(await store.getSession(late.session.id)).toBeNull();
      expect(await store.rotateRefresh(late.session.id, rotation(late.refresh.hash, now))).toEqual({ status: "invalid" });
      // with the version it reads now, it works, and tokens are issued no earlier than the cutoff
      const again = await store.createSession(session(u.id).session, 1);
      expect(again).toMatchObject({ status: "ok", basis: { version: 1, notBeforeIat: e.tokenValidAfter } });
      expect(await store.createSession(session("nobody").session, 0)).toEqual({ status: "stale" });
    });

    it("rotates: the new token works, the old one is then reused; the basis comes with it", async () => {
      const { u, s, r } = await newUserWithSession();
      const t1 = Date.now() + 10;
      const rot1 = rotation(r.hash, t1);
      const res = await store.rotateRefresh(s.id, rot1);
      expect(res).toMatchObject({ status: "ok", session: { ...s, lastSeenAt: t1, expiresAt: rot1.expiresAt }, basis: { username: u.username, version: 0 } });
      expect((await store.getSession(s.id))?.lastSeenAt).toBe(t1);

      const t2 = t1 + 10;
      expect((await store.rotateRefresh(s.id, rotation(rot1.nextHash, t2))).status).toBe("ok");
      expect(await store.rotateRefresh(s.id, rotation(r.hash, t2))).toEqual({ status: "reused", sessionId: s.id, userId: u.id });
      expect(await store.rotateRefresh(s.id, rotation(rot1.nextHash, t2))).toEqual({ status: "reused", sessionId: s.id, userId: u.id });
    });

    it("answers the last rotated token within the grace with its sealed successor, then reuse", async () => {
      const { u, s, r } = await newUserWithSession();
      const t1 = Date.now();
      const rot1 = rotation(r.hash, t1);
      await store.rotateRefresh(s.id, rot1);
      const retry = await store.rotateRefresh(s.id, rotation(r.hash, t1 + 2_000, { graceMs: 10_000 }));
      expect(retry).toMatchObject({ status: "grace", nextSealed: rot1.nextSealed, session: { id: s.id, userId: u.id }, basis: { version: 0 } });
      // nothing moved: the successor is still the live token
      const rot2 = rotation(rot1.nextHash, t1 + 3_000, { graceMs: 10_000 });
      expect((await store.rotateRefresh(s.id, rot2)).status).toBe("ok");
      // the first token is no longer the last rotated one: reuse
      expect(await store.rotateRefresh(s.id, rotation(r.hash, t1 + 3_000, { graceMs: 10_000 }))).toEqual({ status: "reused", sessionId: s.id, userId: u.id });
      // past the grace, the last rotated one is reuse too
      expect(await store.rotateRefresh(s.id, rotation(rot1.nextHash, t1 + 14_000, { graceMs: 10_000 }))).toEqual({ status: "reused", sessionId: s.id, userId: u.id });
    });

    it("keeps a bounded trail of rotated tokens: older ones are invalid, not stored", async () => {
      const { u, s, r } = await newUserWithSession();
      const now = Date.now();
      const hashes = [r.hash];
      for (let i = 0; i < REFRESH_TRAIL + 5; i++) {
        const rot = rotation(hashes[hashes.length - 1]!, now + i);
        expect((await store.rotateRefresh(s.id, rot)).status).toBe("ok");
        hashes.push(rot.nextHash);
      }
      const t = now + 100;
      // the newest REFRESH_TRAIL rotated tokens are still recognised as reuse ...
      const rotated = hashes.slice(0, -1);
      expect(await store.rotateRefresh(s.id, rotation(rotated[rotated.length - REFRESH_TRAIL]!, t))).toEqual({ status: "reused", sessionId: s.id, userId: u.id });
      // ... older ones are forgotten
      expect(await store.rotateRefresh(s.id, rotation(rotated[rotated.length - REFRESH_TRAIL - 1]!, t))).toEqual({ status: "invalid" });
    });

    it("answers invalid for unknown and expired refresh tokens, naming the user only to an authentic one", async () => {
      const { u, s, r } = await newUserWithSession();
      const now = Date.now();
      expect(await store.rotateRefresh(s.id, rotation(digest(), now))).toEqual({ status: "invalid" });
      expect(await store.rotateRefresh("missing", rotation(r.hash, now))).toEqual({ status: "invalid" });
      const late = s.expiresAt + 1000;
      const expired = await store.rotateRefresh(s.id, rotation(r.hash, late));
      expect(expired.status).toBe("invalid");
      if (expired.status === "invalid" && expired.userId !== undefined) expect(expired.userId).toBe(u.id);
    });

    it("refuses to rotate for a banned user, reading the ban in the same step", async () => {
      const { u, s, r } = await newUserWithSession();
      const now = Date.now();
      await store.applyRevocation({ kind: "user", userId: u.id, ban: { until: null }, reason: "banned" }, { now, ...CTX });
      expect(await store.rotateRefresh(s.id, rotation(r.hash, now))).toEqual({ status: "banned", userId: u.id });
      await store.applyRevocation({ kind: "unban", userId: u.id, reason: "unbanned" }, { now, ...CTX });
      // the ban killed the session anyway
      expect(await store.rotateRefresh(s.id, rotation(r.hash, now))).toEqual({ status: "invalid", userId: u.id });
    });
  });

  describe("revocation", () => {
    it("session: kills the session and its refresh tokens, marks sid and jti", async () => {
      const { u, s, r } = await newUserWithSession();
      const keep = session(u.id);
      await open(keep.session);
      const now = Date.now();
      const jtiExp = now + 30_000;

      const e = await store.applyRevocation(
        { kind: "session", userId: u.id, sessionId: s.id, jti: "jti-1", jtiExp, reason: "logout" },
        { now, ...CTX },
      );
      expect(e).toEqual({
        seq: 1,
        kind: "session",
        userId: u.id,
        sessionId: s.id,
        jti: "jti-1",
        reason: "logout",
        at: e.at,
        expiresAt: e.at + CTX.markTtlMs,
        nodeId: CTX.nodeId,
      });
      // the store's clock (Redis TIME), not necessarily the caller's
      expect(Math.abs(e.at - now)).toBeLessThan(5_000);

      expect(await store.getSession(s.id)).toBeNull();
      expect(await store.rotateRefresh(s.id, rotation(r.hash, now))).toEqual({ status: "invalid", userId: u.id });
      expect((await store.listSessions(u.id, now)).map((x) => x.id)).toEqual([keep.session.id]);
      expect((await store.rotateRefresh(keep.session.id, rotation(keep.refresh.hash, now))).status).toBe("ok");

      const marks = await store.loadMarks(now);
      expect(marks.seq).toBe(1);
      expect(marks.sessions).toEqual([{ sessionId: s.id, expiresAt: e.expiresAt, reason: "logout" }]);
      expect(marks.jtis).toEqual([{ jti: "jti-1", expiresAt: jtiExp, reason: "logout" }]);
      expect(marks.users).toEqual([]);
      expect(marks.bans).toEqual([]);
      expect(marks.global).toBeNull();
    });

    it("session: a rotated (old) refresh token of a revoked session is dead too", async () => {
      const { u, s, r } = await newUserWithSession();
      const now = Date.now();
      const rot = rotation(r.hash, now);
      await store.rotateRefresh(s.id, rot);
      await store.applyRevocation({ kind: "session", userId: u.id, sessionId: s.id, reason: "refresh_reused" }, { now, ...CTX });
      expect((await store.rotateRefresh(s.id, rotation(r.hash, now))).status).toBe("invalid");
      expect(await store.rotateRefresh(s.id, rotation(rot.nextHash, now))).toEqual({ status: "invalid", userId: u.id });
    });

    it("user: bumps version, sets tokenValidAfter, kills every session, marks the user", async () => {
      const { u, s, r } = await newUserWithSession();
      const second = session(u.id);
      await open(second.session);
      const bystander = await newUserWithSession();
      const now = Date.now();

      const e1 = await store.applyRevocation({ kind: "user", userId: u.id, reason: "password_changed" }, { now, ...CTX });
      const tva = Math.floor(e1.at / 1000) + 1;
      expect(e1).toEqual({
        seq: 1,
        kind: "user",
        userId: u.id,
        tokenValidAfter: tva,
        version: 1,
        reason: "password_changed",
        at: e1.at,
        expiresAt: e1.at + CTX.markTtlMs,
        nodeId: CTX.nodeId,
      });
      expect(await store.getUser(u.id)).toMatchObject({ version: 1, tokenValidAfter: tva, ban: null });
      expect(await store.getSession(s.id)).toBeNull();
      expect(await store.getSession(second.session.id)).toBeNull();
      expect(await store.listSessions(u.id, now)).toEqual([]);
      for (const [sid, hash] of [[s.id, r.hash], [second.session.id, second.refresh.hash]] as const) {
        expect(await store.rotateRefresh(sid, rotation(hash, now))).toEqual({ status: "invalid", userId: u.id });
      }
      expect(await store.getSession(bystander.s.id)).toEqual(bystander.s);

      const later = now + 1500;
      const e2 = await store.applyRevocation({ kind: "user", userId: u.id, reason: "logout_all" }, { now: later, ...CTX });
      expect(e2.seq).toBe(2);
      expect(e2.version).toBe(2);
      expect(e2.tokenValidAfter).toBe(Math.floor(e2.at / 1000) + 1);

      const marks = await store.loadMarks(later);
      expect(marks.seq).toBe(2);
      expect(marks.users).toEqual([{ userId: u.id, version: 2, tokenValidAfter: e2.tokenValidAfter, expiresAt: e2.expiresAt, reason: "logout_all" }]);
    });

    it("user with ban, then unban: record and ban mark set and cleared", async () => {
      const { u, s, r } = await newUserWithSession();
      const now = Date.now();
      const until = now + 10_000; // shorter than the mark TTL: the ban mark ends with the ban
      const ban = { until, reason: "cheating" };

      const e = await store.applyRevocation({ kind: "user", userId: u.id, ban, reason: "banned" }, { now, ...CTX });
      expect(e).toMatchObject({ kind: "user", userId: u.id, ban, version: 1, reason: "banned" });
      expect((await store.getUser(u.id))?.ban).toEqual(ban);
      expect(await store.getSession(s.id)).toBeNull();
      // the refresh is refused as banned, so accounts.ts can answer USER_BANNED
      expect(await store.rotateRefresh(s.id, rotation(r.hash, now))).toEqual({ status: "banned", userId: u.id });

      let marks = await store.loadMarks(now);
      expect(marks.bans).toEqual([{ userId: u.id, until, expiresAt: until }]);
      expect(marks.users).toEqual([expect.objectContaining({ userId: u.id, version: 1, reason: "banned" })]);

      const permanent = { until: null };
      const again = await store.applyRevocation({ kind: "user", userId: u.id, ban: permanent, reason: "banned" }, { now, ...CTX });
      marks = await store.loadMarks(now);
      expect(marks.bans).toEqual([{ userId: u.id, until: null, expiresAt: again.expiresAt }]);

      const un = await store.applyRevocation({ kind: "unban", userId: u.id, reason: "unbanned" }, { now, ...CTX });
      expect(un).toMatchObject({ seq: 3, kind: "unban", userId: u.id, reason: "unbanned", nodeId: CTX.nodeId });
      expect((await store.getUser(u.id))?.ban).toBeNull();
      marks = await store.loadMarks(now);
      expect(marks.bans).toEqual([]);
      expect(marks.users).toHaveLength(1); // unban does not undo the kick
    });

    it("global: marks everything and refuses refresh of sessions created before it", async () => {
      const { s, r } = await newUserWithSession();
      const now = Date.now() + 5;
      const e = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now, ...CTX });
      const tva = Math.floor(e.at / 1000) + 1;
      expect(e).toEqual({ seq: 1, kind: "global", tokenValidAfter: tva, reason: "revoked_all", at: e.at, expiresAt: e.at + CTX.markTtlMs, nodeId: CTX.nodeId });
      expect((await store.loadMarks(now)).global).toEqual({ tokenValidAfter: tva, expiresAt: e.expiresAt });

      const t = now + 10;
      expect((await store.rotateRefresh(s.id, rotation(r.hash, t))).status).toBe("invalid");
      // a session made after the revoke-all refreshes normally
      const u2 = user();
      await store.createUser(u2);
      const fresh = session(u2.id, { now: t });
      await open(fresh.session);
      expect((await store.rotateRefresh(fresh.session.id, rotation(fresh.refresh.hash, t + 1))).status).toBe("ok");
    });

    it("global: a second revoke-all within the same second moves the cutoff past the first", async () => {
      // Tokens issued right after the first carry iat = its cutoff; the second must refuse them too.
      const now = Date.now();
      const first = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now, ...CTX });
      const second = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: now + 1, ...CTX });
      expect(first.tokenValidAfter).toBe(Math.floor(first.at / 1000) + 1);
      expect(second.tokenValidAfter).toBe(Math.max(first.tokenValidAfter! + 1, Math.floor(second.at / 1000) + 1));
      expect((await store.loadMarks(now + 1)).global).toEqual({ tokenValidAfter: second.tokenValidAfter, expiresAt: second.expiresAt });
      // Later, the cutoff is the next whole second again (memory follows the caller's time; Redis its own).
      const later = now + 10_000;
      const third = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now: later, ...CTX });
      expect(third.tokenValidAfter).toBe(Math.max(second.tokenValidAfter! + 1, Math.floor(third.at / 1000) + 1));
    });

    it("global refusal outlives the global mark", async () => {
      const { s, r } = await newUserWithSession();
      const now = Date.now() + 5;
      const e = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now, markTtlMs: 200, nodeId: "n" });
      await h.passTime(store, e.expiresAt);
      const t = Math.max(Date.now(), e.expiresAt + 1);
      expect((await store.loadMarks(t)).global).toBeNull();
      expect((await store.rotateRefresh(s.id, rotation(r.hash, t))).status).toBe("invalid");
    });

    it("loadMarksFor reads just the marks that could cover one token", async () => {
      const a = await newUserWithSession();
      const b = await newUserWithSession();
      const now = Date.now();
      const ctx = { now, ...CTX };
      const ea = await store.applyRevocation({ kind: "session", userId: a.u.id, sessionId: a.s.id, jti: "ja", jtiExp: now + 60_000, reason: "logout" }, ctx);
      await store.applyRevocation({ kind: "user", userId: b.u.id, ban: { until: null }, reason: "banned" }, ctx);
      const forA = await store.loadMarksFor({ userId: a.u.id, sessionId: a.s.id, jti: "ja" }, now);
      expect(forA).toEqual({
        jtis: [{ jti: "ja", expiresAt: now + 60_000, reason: "logout" }],
        sessions: [{ sessionId: a.s.id, expiresAt: ea.expiresAt, reason: "logout" }],
        users: [],
        bans: [],
        global: null,
      });
      const forB = await store.loadMarksFor({ userId: b.u.id, sessionId: b.s.id, jti: "jb" }, now);
      expect([forB.jtis, forB.sessions, forB.users.map((m) => [m.userId, m.version]), forB.bans.map((m) => m.userId)]).toEqual([[], [], [[b.u.id, 1]], [b.u.id]]);
      const g = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, ctx);
      expect((await store.loadMarksFor({ userId: "nobody", sessionId: "none", jti: "none" }, now)).global).toEqual({ tokenValidAfter: g.tokenValidAfter, expiresAt: g.expiresAt });
    });

    it("marks vanish after their expiry; seq survives", async () => {
      const { u, s } = await newUserWithSession();
      const other = await newUserWithSession();
      const now = Date.now();
      const ctx = { now, markTtlMs: 300, nodeId: "n" };
      await store.applyRevocation({ kind: "session", userId: u.id, sessionId: s.id, jti: "j", jtiExp: now + 300, reason: "logout" }, ctx);
      await store.applyRevocation({ kind: "user", userId: other.u.id, ban: { until: null }, reason: "banned" }, ctx);
      const last = await store.applyRevocation({ kind: "global", reason: "revoked_all" }, ctx);
      const before = await store.loadMarks(now);
      expect([before.jtis.length, before.sessions.length, before.users.length, before.bans.length, before.global !== null]).toEqual([1, 1, 1, 1, true]);

      await h.passTime(store, last.expiresAt);
      // now = 0 asks for every mark still stored at all: none may remain (Redis must have dropped the keys)
      const after = await store.loadMarks(0);
      expect(before.epoch).toMatch(/^[0-9a-f]{16}$/);
      expect(after).toEqual({ epoch: before.epoch, seq: 3, jtis: [], sessions: [], users: [], bans: [], global: null });
    });

    it("seq increases across kinds and the snapshot reflects the last one", async () => {
      const { u, s } = await newUserWithSession();
      const now = Date.now();
      const seqs: number[] = [];
      seqs.push((await store.applyRevocation({ kind: "session", userId: u.id, sessionId: s.id, reason: "kicked" }, { now, ...CTX })).seq);
      seqs.push((await store.applyRevocation({ kind: "user", userId: u.id, reason: "kicked" }, { now, ...CTX })).seq);
      seqs.push((await store.applyRevocation({ kind: "unban", userId: u.id, reason: "unbanned" }, { now, ...CTX })).seq);
      seqs.push((await store.applyRevocation({ kind: "global", reason: "revoked_all" }, { now, ...CTX })).seq);
      expect(seqs).toEqual([1, 2, 3, 4]);
      expect((await store.loadMarks(now)).seq).toBe(4);
    });
  });

  describe("audit", () => {
    it("appends and lists newest first with a limit", async () => {
      const entries: AuditEntry[] = [1, 2, 3, 4, 5].map((i) => ({
        id: `a${i}`,
        at: new Date(1_700_000_000_000 + i).toISOString(),
        actorId: "admin",
        actorName: "Admin",
        action: "kick",
        target: `u${i}`,
        detail: { n: i },
      }));
      for (const e of entries) await store.appendAudit(e);
      expect(await store.listAudit(3)).toEqual([entries[4], entries[3], entries[2]]);
      expect(await store.listAudit(50)).toEqual([...entries].reverse());
      expect(await store.listAudit(0)).toEqual([]);
    });

    it("keeps only the newest 10,000 entries", async () => {
      const total = 10_005;
      for (let start = 0; start < total; start += 1000) {
        const batch = [];
        // issued in order on one connection, so they land in order
        for (let i = start; i < Math.min(total, start + 1000); i++) {
          batch.push(store.appendAudit({ id: `a${i}`, at: new Date(i).toISOString(), actorId: "x", actorName: "X", action: "kick" }));
        }
        await Promise.all(batch);
      }
      const all = await store.listAudit(20_000);
      expect(all).toHaveLength(10_000);
      expect(all[0]!.id).toBe(`a${total - 1}`);
      expect(all[9_999]!.id).toBe(`a${total - 10_000}`);
    });
  });

  it("ping answers true", async () => {
    expect(await store.ping()).toBe(true);
  });

  it("a guest account expires with its last session; a registered one stays", async () => {
    const now = Date.now();
    const ttl = 600;
    const guest = user({ guest: true, passwordHash: null, createdAt: now - 120_000 });
    const member = user({ createdAt: now - 120_000 });
    for (const u of [guest, member]) {
      await store.createUser(u);
      const x = session(u.id, { now: now, expiresAt: now + ttl });
      await open(x.session);
      // a rotation slides the session (and the guest) along with the newest refresh token
      await store.rotateRefresh(x.session.id, rotation(x.refresh.hash, now + 10, { expiresAt: now + 10 + ttl }));
    }
    await h.passTime(store, now + 10 + ttl);
    await waitFor(async () => (await store.getUser(guest.id)) === null, { timeoutMs: 10_000, message: "guest gone" });
    expect(await store.getUserByUsername(guest.username)).toBeNull();
    expect(await store.getUser(member.id)).toMatchObject({ id: member.id });
    expect(await store.getUserByUsername(member.username)).toMatchObject({ id: member.id });
    // the search never held the guest, so nothing of it is left behind
    expect((await store.searchUsers("", 100)).map((u) => u.id)).toEqual([member.id]);
  });

  it("bounded state: 200 short sessions revoked shrink back to the users", async () => {
    const u = user();
    await store.createUser(u);
    const base = await h.stateSize(store);
    const now = Date.now();
    // long enough to outlast the loop on a cluster, where each revocation also waits for a replica
    const ttl = 3_000;
    let lastExpiry = now;
    for (let i = 0; i < 200; i++) {
      const x = session(u.id, { now: now, expiresAt: now + ttl });
      await open(x.session);
      if (i % 2 === 0) await store.rotateRefresh(x.session.id, rotation(x.refresh.hash, now, { expiresAt: now + ttl }));
      const e = await store.applyRevocation(
        { kind: "session", userId: u.id, sessionId: x.session.id, jti: `j${i}`, jtiExp: now + 300, reason: "logout" },
        { now, markTtlMs: 300, nodeId: "n" },
      );
      lastExpiry = Math.max(lastExpiry, e.expiresAt, now + ttl);
    }
    expect(await h.stateSize(store)).toBeGreaterThan(base + 200);
    await h.passTime(store, lastExpiry);
    // + the seq counter
    await waitFor(async () => (await h.stateSize(store)) <= base + 1, { timeoutMs: 10_000, message: "state shrinks back" });
  });
}

describe("MemoryStore", () => {
  contract({
    create: async () => new MemoryStore(),
    passTime: async (store, t) => (store as MemoryStore).sweep(t + 1),
    stateSize: async (store) => {
      const s = (store as MemoryStore).stats();
      return s.users + s.sessions + s.refresh + s.marks;
    },
  });
});

describe("RedisStore", () => {
  const redis = useRedis("single");

  contract({
    create: async () => {
      await redis.flush();
      return RedisStore.connect(redis.connectOptions());
    },
    // Redis TTLs run on the wall clock.
    passTime: (_store, t) => waitFor(() => Date.now() > t + 5, { timeoutMs: 10_000, intervalMs: 10 }).then(() => {}),
    stateSize: () => redis.size(),
  });

  it("indexes, once, the accounts of a dataset from before the search (guests left out)", async () => {
    await redis.flush();
    const old = await RedisStore.connect(redis.connectOptions());
    const member = user({ username: "Oldtimer" });
    await old.createUser(member);
    await old.createUser(user({ username: "guest-old", passwordHash: null, guest: true }));
    await old.close();
    // what an earlier version left behind: users, no index
    await redis.admin().del("gh:names", "gh:names:built");
    const store = await RedisStore.connect(redis.connectOptions());
    try {
      expect(await store.searchUsers("old", 10)).toEqual([member]);
      expect(await store.searchUsers("", 10)).toEqual([member]);
      expect(await redis.admin().get("gh:names:built")).toBe("1");
    } finally {
      await store.close();
    }
  });
});


// The same suite on a Redis Cluster (3 primaries + 3 replicas, so every revocation WAITs for a
// replica): a script or call that spans two slots fails there with CROSSSLOT, so these runs show
// that none does.
describe("RedisStore on a Redis Cluster", () => {
  const redis = useRedis("cluster");

  contract({
    create: async () => {
      await redis.flush();
      return RedisStore.connect(redis.connectOptions());
    },
    passTime: (_store, t) => waitFor(() => Date.now() > t + 5, { timeoutMs: 10_000, intervalMs: 10 }).then(() => {}),
    stateSize: () => redis.size(),
  });
});
