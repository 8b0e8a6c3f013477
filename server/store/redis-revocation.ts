/**
 * RedisStore's revocations: the durable part, seq and publish, and the snapshots nodes load.
 * A revocation spans two slots, so it is two steps, each one script, each WAITed for a replica
 * when its primary has one (Topology.writeDurably):
 *  (a) the user's slot: record, sessions, marks (a revoke-all has no (a));
 *  (b) the {g} slot: the next seq, and the event published on the sharded feed channel.
 * Marks are durable before the seq that announces them exists, so a snapshot that reads the seq
 * first and then scans the marks holds every event up to that seq.
 */
import { randomBytes } from "node:crypto";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { banMarkExpiry, markExpiry, nextSecond } from "../revocation/mark-rules";
import { addMark, asStrings } from "./redis-codec";
import { userIdOfSessionId, type Keys } from "./redis-keys";
import { scripts } from "./redis-scripts";
import { notReplicated, type Topology } from "./redis-topology";
import type { MarkSnapshot, Marks, RevocationChange, RevocationEvent } from "./store";

const SCAN_COUNT = 500;
const PUBLISH_ATTEMPTS = 5;
const PUBLISH_RETRY_MS = 200;

export interface Applied {
  event: RevocationEvent;
  /** subscribers the publish reached */
  receivers: number;
}

export class RedisRevocations {
  constructor(
    private readonly t: Topology,
    private readonly k: Keys,
  ) {}

  async apply(change: RevocationChange, ctx: { markTtlMs: number; nodeId: string }): Promise<Applied> {
    const k = this.k;
    const base: Record<string, unknown> = { kind: change.kind, reason: change.reason, nodeId: ctx.nodeId };
    if (change.kind === "global") {
      const reply = await this.t.writeDurably(scripts.globalRevoke, [k.globalMark, k.gen, k.seq, k.channel, k.userCut], [ctx.markTtlMs, JSON.stringify(base), this.t.pubsub.publish]);
      return parseApplied(reply);
    }

    const uid = change.userId;
    base.userId = uid;
    let now = "";
    let sessionKeys: string[] = [];
    let sid = "";
    let jti = "";
    let jtiExp = 0;
    let mark = "{}";
    let jtiMark = "";
    let banExpiresAt = "";
    let banJson = "";
    let banMark = "{}";
    let passwordHash = "";
    let ifPasswordHash = "";
    let marksExpireAt = "";
    let userCutoff = "";
    if (change.kind === "session") {
      sid = change.sessionId;
      base.sessionId = sid;
      if (change.note) base.note = change.note;
      // a sid that does not name this user has no record in its slot: only its mark is written
      if (userIdOfSessionId(sid) === uid) sessionKeys = [k.session(uid, sid)];
      mark = JSON.stringify({ t: "s", sessionId: sid, reason: change.reason });
      if (change.jti && change.jtiExp !== undefined) {
        jti = change.jti;
        jtiExp = change.jtiExp;
        base.jti = jti;
        jtiMark = JSON.stringify({ t: "j", jti, expiresAt: jtiExp, reason: change.reason });
      }
    } else if (change.kind === "user") {
      if (change.note) base.note = change.note;
      mark = JSON.stringify({ t: "u", userId: uid, reason: change.reason });
      passwordHash = change.passwordHash ?? "";
      ifPasswordHash = change.ifPasswordHash ?? "";
      if (change.ban) {
        base.ban = change.ban;
        banJson = JSON.stringify(change.ban);
        banMark = JSON.stringify({ t: "b", userId: uid, until: change.ban.until });
      }
      // The cutoff is taken on the {g} clock, the one session steps issue tokens on (see RedisStore.sessionStep);
      // with that time known, the cutoff and expiries are computed here, by the same rules as everywhere.
      // Both reads at once (one round trip less on every kick and ban): the session list is read
      // for tidiness only (a session this read misses still cannot refresh: its 'ver' is behind).
      const [clockReply, sessionIds] = await Promise.all([scripts.userClock.run(this.t.client, [k.userCut], []), this.t.client.zrange(k.userSessions(uid), 0, -1)]);
      const clock = Number(clockReply);
      now = String(clock);
      const expiry = markExpiry(clock, ctx.markTtlMs);
      marksExpireAt = String(expiry);
      userCutoff = String(nextSecond(clock));
      if (change.ban) {
        const banExp = banMarkExpiry(change.ban.until, expiry);
        if (banExp > clock) banExpiresAt = String(banExp);
      }
      sessionKeys = sessionIds.map((s) => k.session(uid, s));
    }

    const keys = [k.user(uid), k.userSessions(uid), k.userMark(uid), k.banMark(uid), k.sessionMark(uid, sid), k.jtiMark(uid, jti), ...sessionKeys];
    const args = [change.kind, now, ctx.markTtlMs, jtiExp, banExpiresAt, banJson, mark, jtiMark, banMark, passwordHash, ifPasswordHash, sid, marksExpireAt, userCutoff];
    const userStep = await this.t.write(scripts.revokeInUserSlot, keys, args).catch((err: unknown) => {
      if (err instanceof Error && err.message.includes("STALE_PASSWORD")) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
      throw err;
    });
    const [at, expiresAt, version, tva] = asStrings(userStep.reply);
    const event: Record<string, unknown> = { ...base, at: Number(at), expiresAt: Number(expiresAt) };
    if (change.kind === "user") Object.assign(event, { tokenValidAfter: Number(tva), version: Number(version) });
    // Announced even when the user step is not replicated (then answered 503): its marks are on the
    // primary, and should that primary survive, or its replica have them after all, nodes that never
    // heard of them would keep admitting the tokens they cover (seen in test/cluster/failover).
    const published = await this.publish(event);
    if (!userStep.replicated || !published.replicated) throw notReplicated();
    return parseApplied(published.reply);
  }

  /**
   * The {g} step, tried again for about a second if it fails outright: the user step's marks are
   * written by now, and an event nobody publishes leaves them unannounced. Publishing twice (a
   * reply lost after the script ran) only gives the event two seqs: applying it is idempotent.
   */
  private async publish(event: Record<string, unknown>): Promise<{ reply: unknown; replicated: boolean }> {
    const args = [JSON.stringify(event), this.t.pubsub.publish];
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.t.write(scripts.publishEvent, [this.k.seq, this.k.channel], args);
      } catch (err) {
        if (attempt >= PUBLISH_ATTEMPTS - 1) throw err;
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_RETRY_MS));
      }
    }
  }

  async currentSeq(): Promise<number> {
    return Number((await this.t.client.get(this.k.seq)) ?? 0);
  }

  async loadMarksFor(keys: { userId: string; sessionId: string; jti: string }, now: number): Promise<Marks> {
    const k = this.k;
    const uid = keys.userId;
    const marks: Marks = { jtis: [], sessions: [], users: [], bans: [], global: null };
    const [mine, global] = await Promise.all([
      this.t.client.mget(k.jtiMark(uid, keys.jti), k.sessionMark(uid, keys.sessionId), k.userMark(uid), k.banMark(uid)),
      this.t.client.get(k.globalMark),
    ]);
    for (const raw of [...mine, global]) if (raw !== null) addMark(marks, raw, now);
    return marks;
  }

  async loadMarks(now: number): Promise<MarkSnapshot> {
    // The epoch names this dataset: created once (NX), so a Redis that came back empty (or was
    // flushed) shows a new one to every node that knew the old. seq first: every mark written up
    // to it is then in the scan (marks only get newer).
    const [epoch, seq] = asStrings(await scripts.feedState.run(this.t.client, [this.k.epoch, this.k.seq], [randomBytes(8).toString("hex")]));
    return this.t.stableScan(async () => {
      const snap: MarkSnapshot = { epoch: epoch ?? "", seq: Number(seq ?? 0), jtis: [], sessions: [], users: [], bans: [], global: null };
      for (const node of this.t.primaries()) {
        const seen = new Set<string>();
        let cursor = "0";
        do {
          const [next, found] = await node.scan(cursor, "MATCH", this.k.markPattern, "COUNT", SCAN_COUNT);
          cursor = next;
          const fresh = found.filter((key) => !seen.has(key));
          if (fresh.length === 0) continue;
          for (const key of fresh) seen.add(key);
          // one GET per key on this node (keys of many slots: no MGET on a cluster)
          const pipe = node.pipeline();
          for (const key of fresh) pipe.get(key);
          // a key that moved away answers MOVED: the layout check around the scan sees the move and scans again
          for (const [err, raw] of (await pipe.exec()) ?? []) if (!err && typeof raw === "string") addMark(snap, raw, now);
        } while (cursor !== "0");
      }
      return snap;
    });
  }
}

function parseApplied(reply: unknown): Applied {
  if (!Array.isArray(reply) || typeof reply[0] !== "string") throw new Error("the revocation returned no event");
  return { event: JSON.parse(reply[0]) as RevocationEvent, receivers: Number(reply[1]) };
}
