/** examples/embed-express: an existing express + socket.io app that added Gatehouse through createGatehouse. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startExample } from "../../examples/embed-express/server";
import type { TokenPair } from "../../shared/claims";
import { adminLogin, call, register } from "../helpers/http";
import { NO_LIMITS, TEST_SECRET } from "../helpers/node";
import { startRedis } from "../helpers/redis-server";
import { connect, emitAck, type TestSocket } from "../helpers/sockets";

/** The test env's limits switched off, as options (RATE_LIMIT_LOGIN_IP -> rateLimitLoginIp). */
const noLimits = Object.fromEntries(Object.entries(NO_LIMITS).map(([env, v]) => [env.toLowerCase().replace(/_(\w)/g, (_m, c: string) => c.toUpperCase()), v]));
const options = { jwtSecret: TEST_SECRET, adminUsername: "admin", adminPassword: "admin-password-1", logLevel: "silent" as const, ...noLimits };

let example: Awaited<ReturnType<typeof startExample>>;
const sockets: TestSocket[] = [];
beforeAll(async () => {
  example = await startExample(options, 0);
});
afterAll(async () => {
  sockets.forEach((s) => s.close());
  await example?.close();
});

async function player(): Promise<{ pair: TokenPair; socket: TestSocket }> {
  const pair = await register(example.url);
  const socket = await connect(example.url, pair.accessToken);
  sockets.push(socket);
  return { pair, socket };
}

describe("an express + socket.io app with Gatehouse embedded", () => {
  it("a kick through the revocation API drops the player's socket with session:revoked, and the app keeps working", async () => {
    const kicked = await player();
    const bystander = await player();
    expect(await emitAck(kicked.socket.socket, "echo", { hi: 1 })).toEqual({ hi: 1 });

    const { seq } = await example.gatehouse.kick(kicked.pair.user.id, { reason: "cheating", by: "ops-script" });
    expect(seq).toBeGreaterThan(0);
    // Resolved only once the revocation is applied: the player was told first, then the server disconnected it.
    expect(await kicked.socket.revoked).toMatchObject({ reason: "kicked", disconnectReason: "io server disconnect" });
    expect(kicked.socket.revocations[0]!.message).toContain("cheating");
    expect((await call(example.url, "GET", "/profile", { token: kicked.pair.accessToken })).body.error.code).toBe("TOKEN_REVOKED");

    // The application's own route and socket handler are untouched.
    expect((await call(example.url, "GET", "/hello")).body).toEqual({ hello: "world" });
    expect(await emitAck(bystander.socket.socket, "echo", "still here")).toBe("still here");
    const audit = await call(example.url, "GET", "/admin/audit", { token: (await adminLogin(example.url)).accessToken });
    expect(audit.body[0]).toMatchObject({ action: "kick", actorName: "ops-script", target: kicked.pair.user.id });
  });

  it("a kick through the mounted admin route works the same", async () => {
    const kicked = await player();
    const admin = await adminLogin(example.url);
    expect((await call(example.url, "POST", `/admin/users/${kicked.pair.user.id}/kick`, { token: admin.accessToken, body: {} })).status).toBe(202);
    expect(await kicked.socket.revoked).toMatchObject({ reason: "kicked", disconnectReason: "io server disconnect" });
  });

  it("the Bearer middleware guards the app's own route with the contract's 401, and sets req.claims", async () => {
    const { pair } = await player();
    expect((await call(example.url, "GET", "/profile", { token: pair.accessToken })).body).toEqual({ userId: pair.user.id, role: "player" });
    const missing = await call(example.url, "GET", "/profile");
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe("TOKEN_MISSING");
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it("a socket without a valid token is refused with a coded connect_error", async () => {
    await expect(connect(example.url, "garbage")).rejects.toMatchObject({ message: "TOKEN_INVALID" });
  });

  it("Gatehouse's routers leave the app's other paths alone: its 404s and its query strings", async () => {
    const res = await fetch(`${example.url}/not-a-route?token=abc`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/); // express's own 404, not Gatehouse's JSON
    expect((await call(example.url, "GET", "/hello?token=abc")).body).toEqual({ hello: "world" });
    // Gatehouse's own paths keep the contract: tokens in a query string are refused.
    const { pair } = await player();
    expect((await call(example.url, "GET", `/me?access_token=${pair.accessToken}`)).body.error.code).toBe("TOKEN_INVALID");
  });
});

describe("two instances of the embedding app on one Redis", () => {
  it("a kick issued through one instance's API drops the player's socket on the other", async () => {
    const redis = await startRedis();
    const a = await startExample({ ...options, redisUrl: redis.url, nodeId: "embed-a" }, 0);
    const b = await startExample({ ...options, redisUrl: redis.url, nodeId: "embed-b" }, 0);
    try {
      const pair = await register(a.url);
      const onB = await connect(b.url, pair.accessToken);
      sockets.push(onB);
      expect(await emitAck(onB.socket, "echo", "b")).toBe("b");
      await a.gatehouse.kick(pair.user.id);
      expect(await onB.revoked).toMatchObject({ reason: "kicked", disconnectReason: "io server disconnect" });
      // Resolved after every node confirmed: B refuses the token at once.
      expect((await call(b.url, "GET", "/profile", { token: pair.accessToken })).body.error.code).toBe("TOKEN_REVOKED");
    } finally {
      await Promise.all([a.close(), b.close()]);
      await redis.stop();
    }
  });
});

