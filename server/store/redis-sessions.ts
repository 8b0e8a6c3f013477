/**
 * RedisStore's sessions and refresh chains: each session lives in its user's slot (its id names
 * the user), and every step that issues a token reads the global slot {g} first (see sessionStep).
 */
import { asStrings, parseSession } from "./redis-codec";
import { userIdOfSessionId, type Keys } from "./redis-keys";
import { scripts } from "./redis-scripts";
import type { Topology } from "./redis-topology";
import type { RedisUsers } from "./redis-users";
import { REFRESH_TRAIL, type CreateSessionResult, type NewSession, type RotateResult, type Rotation, type SessionRecord, type TokenBasis } from "./store";

/** A session step that keeps meeting fresh user revocations gives up (503) after this many reads of {g}. */
const SESSION_STEP_ATTEMPTS = 5;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export class RedisSessions {
  constructor(
    private readonly t: Topology,
    private readonly k: Keys,
    private readonly users: RedisUsers,
  ) {}

  async create(ns: NewSession, expectVersion: number): Promise<CreateSessionResult> {
    if (userIdOfSessionId(ns.id) !== ns.userId) throw new Error("a session id must start with its user's id (see newSessionId)");
    const k = this.k;
    const r = await this.sessionStep((g) =>
      scripts.createSession.run(
        this.t.client,
        [k.session(ns.userId, ns.id), k.userSessions(ns.userId), k.user(ns.userId)],
        [ns.id, ns.userId, ns.device, ns.now, ns.expiresAt, ns.refreshHash, expectVersion, g.gen, g.gcut, g.at],
      ),
    );
    if (r[0] !== "ok") return { status: "stale" };
    await this.users.expireGuestName(r[6] ?? "", ns.expiresAt);
    const session: SessionRecord = { id: ns.id, userId: ns.userId, device: ns.device, createdAt: ns.now, lastSeenAt: ns.now, expiresAt: ns.expiresAt };
    return { status: "ok", session, basis: basisOf(r.slice(1, 6)) };
  }

  async get(sessionId: string): Promise<SessionRecord | null> {
    const uid = userIdOfSessionId(sessionId);
    if (uid === null) return null;
    const [h, version] = await Promise.all([this.t.client.hgetall(this.k.session(uid, sessionId)), this.t.client.hget(this.k.user(uid), "version")]);
    // made before the latest revocation of its user: dead, even if that revocation did not list it
    return h.ver === (version ?? "0") ? parseSession(h) : null;
  }

  async list(userId: string, now: number): Promise<SessionRecord[]> {
    const ids = await this.t.client.zrangebyscore(this.k.userSessions(userId), `(${now}`, "+inf");
    const found = await Promise.all(ids.filter((id) => userIdOfSessionId(id) === userId).map((id) => this.t.client.hgetall(this.k.session(userId, id))));
    const out: SessionRecord[] = [];
    for (const h of found) {
      const s = parseSession(h);
      if (s && s.expiresAt > now) out.push(s);
    }
    return out.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  async rotate(sessionId: string, rot: Rotation): Promise<RotateResult> {
    // The trail is matched by substring in Lua: only whole 64-hex digests may reach it.
    if (!SHA256_HEX.test(rot.presentedHash) || !SHA256_HEX.test(rot.nextHash)) return { status: "invalid" };
    const uid = userIdOfSessionId(sessionId);
    if (uid === null) return { status: "invalid" };
    const k = this.k;
    const r = await this.sessionStep((g) =>
      scripts.rotateRefresh.run(
        this.t.client,
        [k.session(uid, sessionId), k.user(uid), k.userSessions(uid)],
        [rot.presentedHash, rot.nextHash, rot.nextSealed, rot.now, rot.expiresAt, rot.graceMs, REFRESH_TRAIL, sessionId, g.gen, g.gcut, g.at],
      ),
    );
    const [status, a1] = r;
    if (status === "ok" || status === "grace") {
      const [, userId, device, createdAt, lastSeenAt, expiresAt] = r;
      const session: SessionRecord = { id: sessionId, userId: userId!, device: device ?? "", createdAt: Number(createdAt), lastSeenAt: Number(lastSeenAt), expiresAt: Number(expiresAt) };
      const basis = basisOf(r.slice(6, 11));
      if (status === "grace") return { status, session, basis, nextSealed: r[12] ?? "" };
      await this.users.expireGuestName(r[11] ?? "", session.expiresAt);
      return { status, session, basis };
    }
    if (status === "banned") return { status, userId: a1! };
    if (status === "reused") return { status, userId: a1!, sessionId };
    return a1 ? { status: "invalid", userId: a1 } : { status: "invalid" };
  }

  /**
   * A session step spans two slots: first the global state (generation, global cutoff, and the
   * time `at` the token is issued at) read in one call on {g}, then the user's script with those,
   * which refuses a session whose generation is older and reads version, user cutoff and ban
   * atomically with the session change. Why no revocation can slip between the two:
   * - a revoke-all before our {g} read is seen by it (its cutoff lifts notBeforeIat, its
   *   generation is what the session must carry); one after it runs later on the same clock, so
   *   its cutoff (next second after its own TIME, and past any user cutoff of that second) is
   *   above our token's iat, and its generation bump means our session never refreshes;
   * - a user revocation is judged by the version read in the user's script, atomically; its cutoff
   *   is taken on the {g} clock too, and if that was after our {g} read ('revokedAt' > at) we read
   *   {g} again, so a token never carries as iat a user cutoff from after a revoke-all it should
   *   fall under.
   */
  private async sessionStep(run: (g: { gen: string; gcut: string; at: string }) => Promise<unknown>): Promise<(string | undefined)[]> {
    for (let attempt = 0; attempt < SESSION_STEP_ATTEMPTS; attempt++) {
      const [gen = "0", gcut = "0", at = "0"] = asStrings(await scripts.readGlobal.run(this.t.client, [this.k.gen, this.k.globalMark], []));
      const r = asStrings(await run({ gen, gcut, at }));
      if (r[0] !== "retry") return r;
    }
    throw new Error("revocations of this user kept landing during the session step");
  }
}

/** username, role, version, notBeforeIat, at: as the session scripts return them. */
function basisOf(r: (string | undefined)[]): TokenBasis {
  const [username, role, version, notBeforeIat, at] = r;
  return { username: username ?? "", role: role === "admin" ? "admin" : "player", version: Number(version), notBeforeIat: Number(notBeforeIat), at: Number(at) };
}
