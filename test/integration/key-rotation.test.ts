/**
 * Rotating JWT_SECRET with the old key in JWT_SECRET_PREVIOUS: a node restarted on one real
 * Redis keeps accepting tokens signed before the rotation (HTTP and socket.io), and signs new
 * ones with the new key only.
 */
import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, login, register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { connect } from "../helpers/sockets";

const OLD_KEY = "old-signing-key-that-is-at-least-32-bytes";
const NEW_KEY = "new-signing-key-that-is-at-least-32-bytes";

describe("key rotation", () => {
  let redis: RedisProcess;
  const nodes: TestNode[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await redis?.stop();
  });

  it("a node restarted with a new key still accepts tokens signed with the old one, and signs with the new one", async () => {
    const before = await startNode({ REDIS_URL: redis.url, JWT_SECRET: OLD_KEY });
    nodes.push(before);
    const user = await register(before.url);
    await before.close();

    const after = await startNode({ REDIS_URL: redis.url, JWT_SECRET: NEW_KEY, JWT_SECRET_PREVIOUS: OLD_KEY });
    nodes.push(after);
    expect((await call(after.url, "GET", "/me", { token: user.accessToken })).status).toBe(200);
    const s = await connect(after.url, user.accessToken);
    expect(s.socket.connected).toBe(true);
    s.close();

    const fresh = await login(after.url, user.user.username);
    expect(() => jwt.verify(fresh.accessToken, NEW_KEY, { algorithms: ["HS256"] })).not.toThrow();
    expect(() => jwt.verify(fresh.accessToken, OLD_KEY, { algorithms: ["HS256"] })).toThrow("invalid signature");

    // Without the old key listed, the old token is refused.
    await after.close();
    const strict = await startNode({ REDIS_URL: redis.url, JWT_SECRET: NEW_KEY });
    nodes.push(strict);
    const refused = await call(strict.url, "GET", "/me", { token: user.accessToken });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("TOKEN_INVALID");
    expect((await call(strict.url, "GET", "/me", { token: fresh.accessToken })).status).toBe(200);
  });
});
