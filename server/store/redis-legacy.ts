/**
 * A Redis kept from a version before the hash-tagged layout (one primary only: that layout could
 * not run on a cluster) is brought over once, at connect: accounts, the revoke-all cutoff and the
 * sequence move to their new names. Sessions made then are dropped: their ids did not carry their
 * user's id, so their refresh tokens cannot be found any more (players log in again). Marks of the
 * old layout stay where they are until they expire (the snapshot scan still reads them).
 * Idempotent and safe from several nodes at once: each key moves with RENAMENX, once.
 */
import type { Redis } from "ioredis";
import type { Keys } from "./redis-keys";
import { escapeGlob } from "./redis-keys";

const SCAN_COUNT = 500;

export async function migrateLegacyLayout(client: Redis, k: Keys): Promise<void> {
  const done = `${k.p}layout:2`;
  if (await client.exists(done)) return;
  const p = k.p;
  const move = async (from: string, to: string) => {
    // another node may have moved it first
    await client.renamenx(from, to).catch(() => 0);
  };
  // Only what is unmistakably an old record (its type and its own fields say so): other modules
  // may keep keys under the same prefix.
  for (const kind of ["u:", "s:", "us:"]) {
    let cursor = "0";
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", `${escapeGlob(p + kind)}*`, "COUNT", SCAN_COUNT);
      cursor = next;
      for (const key of keys) {
        const id = key.slice(p.length + kind.length);
        if (key.includes("{")) continue; // the new layout
        const type = await client.type(key);
        const isRecord = type === "hash" && (await client.hget(key, "id")) === id;
        if (kind === "u:" && isRecord) await move(key, k.user(id));
        else if (kind === "s:" && isRecord) await client.del(key);
        else if (kind === "us:" && type === "zset") await client.del(key);
      }
    } while (cursor !== "0");
  }
  await move(`${p}m:g`, k.globalMark);
  await move(`${p}seq`, k.seq);
  await move(`${p}epoch`, k.epoch);
  await client.del(`${p}g:gen`);
  await client.set(done, "1");
}
