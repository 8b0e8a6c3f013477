/**
 * RedisStore's accounts: the user record lives in its user's slot, the username claim `un:<name>`
 * and the search index `names` in slots of their own, so creating an account takes several calls
 * (a cluster cannot make them one). The order makes a half-done creation harmless: the name is
 * claimed first ("<userId> <claimedAtMs>", SET NX), then indexed, then the record written, then the
 * claim checked again. A claim whose user record is missing and that is older than
 * NAME_CLAIM_GRACE_MS (a creation that died half-way) counts as free: a new account takes it over
 * by compare-and-set, and getUserByUsername answers null for it.
 */
import { ErrorCode, GatehouseError } from "../../shared/errors";
import type { UserRecord } from "./store";
import { pairsToObject, parseUser, userFields } from "./redis-codec";
import type { Keys } from "./redis-keys";
import { scripts } from "./redis-scripts";
import type { RedisClient, Topology } from "./redis-topology";

/** Far longer than the three calls of a creation can take (each fails within the command timeout). */
export const NAME_CLAIM_GRACE_MS = 10_000;
const SCAN_COUNT = 500;
const ATTEMPTS = 5;

interface Claim {
  raw: string;
  id: string;
  /** epoch ms, Redis time; 0 when unknown */
  at: number;
}

function parseClaim(raw: string | null): Claim | null {
  if (raw === null) return null;
  const [id = "", at] = raw.split(" ");
  return { raw, id, at: Number(at ?? 0) || 0 };
}

export class RedisUsers {
  constructor(
    private readonly t: Topology,
    private readonly k: Keys,
  ) {}

  private get c(): RedisClient {
    return this.t.client;
  }

  async create(user: UserRecord): Promise<void> {
    const name = user.username.toLowerCase();
    if (!(await this.claim(name, user.id))) throw new GatehouseError(ErrorCode.USERNAME_TAKEN);
    // guests stay out of the search index: their accounts expire with their sessions
    if (!user.guest) await this.c.zadd(this.k.names, 0, name);
    await this.c.hset(this.k.user(user.id), ...userFields(user));
    await this.confirmClaim(name, user.id);
  }

  async get(id: string): Promise<UserRecord | null> {
    return parseUser(await this.c.hgetall(this.k.user(id)));
  }

  async byName(username: string): Promise<UserRecord | null> {
    const name = username.toLowerCase();
    const claim = parseClaim(await this.c.get(this.k.name(name)));
    if (!claim) return null;
    const u = await this.get(claim.id);
    return u && u.username.toLowerCase() === name ? u : null;
  }

  async search(prefix: string, limit: number): Promise<UserRecord[]> {
    // Usernames are [a-z0-9_-] once lower-cased: every name with the prefix sorts below prefix + "\xff".
    const p = prefix.toLowerCase();
    const names = await this.c.zrangebylex(this.k.names, `[${p}`, `[${p}\xff`, "LIMIT", 0, limit);
    // one call per key: the names and the users live in different slots
    const users = await Promise.all(names.map((n) => this.byName(n)));
    return users.filter((u): u is UserRecord => u !== null);
  }

  async upsertAdmin(user: UserRecord): Promise<UserRecord> {
    const name = user.username.toLowerCase();
    const deadline = Date.now() + NAME_CLAIM_GRACE_MS + 2_000;
    while (Date.now() < deadline) {
      const claimed = await scripts.claimName.run(this.c, [this.k.name(name)], [user.id]);
      let id = user.id;
      const [status, raw, now] = claimed as [string, string?, string?];
      if (status !== "ok") {
        const held = parseClaim(raw ?? null)!;
        if ((await this.c.exists(this.k.user(held.id))) === 1) id = held.id;
        else if (Number(now) - held.at < NAME_CLAIM_GRACE_MS) {
          // another node is creating it right now (several nodes starting together): let it finish
          await new Promise((r) => setTimeout(r, 100));
          continue;
        } else if ((await scripts.takeName.run(this.c, [this.k.name(name)], [held.raw, user.id])) !== 1) continue;
      }
      const fields = userFields({ ...user, id, role: "admin" });
      const reply = await scripts.upsertAdmin.run(this.c, [this.k.user(id)], [user.passwordHash === null ? "0" : "1", user.passwordHash ?? "", ...fields]);
      if (reply === 0) throw new GatehouseError(ErrorCode.USERNAME_TAKEN, "That username belongs to a player account.");
      if (id === user.id) {
        try {
          await this.confirmClaim(name, id);
        } catch {
          continue;
        }
      }
      await this.c.zadd(this.k.names, 0, name);
      const parsed = parseUser(pairsToObject(reply));
      if (!parsed) throw new Error("upsertAdmin returned no user");
      return parsed;
    }
    throw new Error("could not claim the admin's username");
  }

  /**
   * Accounts created before the names index existed (a Redis kept from an earlier version) are
   * added to it once. Idempotent: nodes starting together, or a create meanwhile, only repeat ZADDs.
   */
  async indexExistingNames(): Promise<void> {
    if (await this.c.exists(this.k.namesBuilt)) return;
    await this.t.stableScan(async () => {
      for (const node of this.t.primaries()) {
        let cursor = "0";
        do {
          const [next, keys] = await node.scan(cursor, "MATCH", this.k.namePattern, "COUNT", SCAN_COUNT);
          cursor = next;
          const prefixLen = this.k.name("").length;
          const users = await Promise.all(keys.map((key) => this.byName(key.slice(prefixLen))));
          // guests stay out (see the key layout)
          const add = users.filter((u) => u !== null && !u.guest).flatMap((u) => [0, u!.username.toLowerCase()]);
          if (add.length > 0) await this.c.zadd(this.k.names, ...add);
        } while (cursor !== "0");
      }
    });
    await this.c.set(this.k.namesBuilt, "1");
  }

  /** A guest's name expires with the guest (the record's expiry is set in the session step). */
  async expireGuestName(lowerName: string, at: number): Promise<void> {
    if (lowerName) await this.c.pexpireat(this.k.name(lowerName), at);
  }

  /** Claims `name` for `id`: free, or held by a record that is missing past the grace. */
  private async claim(name: string, id: string): Promise<boolean> {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const [status, raw, now] = (await scripts.claimName.run(this.c, [this.k.name(name)], [id])) as [string, string?, string?];
      if (status === "ok") return true;
      const held = parseClaim(raw ?? null)!;
      if ((await this.c.exists(this.k.user(held.id))) === 1) return false;
      // a creation under way: its record is not written yet
      if (Number(now) - held.at < NAME_CLAIM_GRACE_MS) return false;
      if ((await scripts.takeName.run(this.c, [this.k.name(name)], [held.raw, id])) === 1) return true;
    }
    return false;
  }

  /**
   * The claim may have been taken over while this creation stalled past the grace: then the name is
   * the other account's, and this record goes away.
   */
  private async confirmClaim(name: string, id: string): Promise<void> {
    if (parseClaim(await this.c.get(this.k.name(name)))?.id === id) return;
    await this.c.del(this.k.user(id));
    throw new GatehouseError(ErrorCode.USERNAME_TAKEN);
  }
}
