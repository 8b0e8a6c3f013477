/**
 * The admin account from ADMIN_USERNAME / ADMIN_PASSWORD, as every node sets it
 * at start, on one real Redis: a restart with the same password changes
 * nothing; a new password revokes every earlier admin token (refresh tokens
 * included) and is audited; a name that belongs to a player is never promoted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, register, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";

describe("admin account set at start", () => {
  let redis: RedisProcess;
  const nodes: TestNode[] = [];
  const node = async (env: Record<string, string>) => {
    const n = await startNode({ REDIS_URL: redis.url, ...env });
    nodes.push(n);
    return n;
  };
  const login = (url: string, username: string, password: string) => call(url, "POST", "/auth/login", { body: { username, password } });

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await redis?.stop();
  });

  it("a restart with the same password keeps the admin's sessions; a new password ends them", async () => {
    const username = uniqueName("boss");
    const a = await node({ ADMIN_USERNAME: username, ADMIN_PASSWORD: "first-password" });
    const before = (await login(a.url, username, "first-password")).body;
    expect(before.user.role).toBe("admin");

    // Same password on another node (its own salt): nothing is revoked.
    const b = await node({ ADMIN_USERNAME: username, ADMIN_PASSWORD: "first-password" });
    expect((await call(b.url, "GET", "/admin/players", { token: before.accessToken })).status).toBe(200);

    // A new password: the old access and refresh tokens die on every node, the old password too.
    const c = await node({ ADMIN_USERNAME: username, ADMIN_PASSWORD: "second-password" });
    for (const url of [a.url, b.url, c.url]) {
      expect((await call(url, "GET", "/admin/players", { token: before.accessToken })).status).toBe(401);
    }
    expect((await call(c.url, "POST", "/auth/refresh", { body: { refreshToken: before.refreshToken } })).status).toBe(401);
    expect((await login(c.url, username, "first-password")).status).toBe(401);
    const after = (await login(a.url, username, "second-password")).body;
    const audit = await call(a.url, "GET", "/admin/audit?limit=5", { token: after.accessToken });
    expect(audit.body.find((e: { action: string }) => e.action === "admin_password_reset")).toMatchObject({ actorName: "(node start)", detail: { username } });
  });

  it("refuses to start when ADMIN_USERNAME names a player's account (in any letter case)", async () => {
    const seed = await node({ ADMIN_USERNAME: uniqueName("seed"), ADMIN_PASSWORD: "seed-password" });
    const player = uniqueName("ops");
    const pair = await register(seed.url, player);
    await expect(node({ ADMIN_USERNAME: player.toUpperCase(), ADMIN_PASSWORD: "hijack-password" })).rejects.toThrow(/player account/);
    // The player is still a player.
    const refreshed = await call(seed.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    expect(refreshed.body.user.role).toBe("player");
    expect((await call(seed.url, "GET", "/admin/players", { token: refreshed.body.accessToken })).status).toBe(403);
  });
});
