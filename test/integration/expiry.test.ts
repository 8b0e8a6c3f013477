/** Live token expiry: a socket is dropped at `exp` unless it renewed in band with auth:refresh. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { call, register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { connect, emitAck } from "../helpers/sockets";

/** The token's `iat` in ms (claims are not verified here: the server issued this token). */
function issuedAtMs(token: string): number {
  return JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).iat * 1000;
}

describe("live token expiry (4 s access tokens)", () => {
  let node: TestNode;
  beforeAll(async () => {
    // 4 s, not 2: on a loaded CI machine registering and connecting can take over a
    // second, and the diligent socket must still be alive when it renews.
    node = await startNode({ ACCESS_TOKEN_TTL: "4s" });
  });
  afterAll(() => node?.close());

  it("drops the socket that did not renew with token_expired, keeps the one that did", async () => {
    const pair = await register(node.url);
    const lazy = await connect(node.url, pair.accessToken);
    const diligent = await connect(node.url, pair.accessToken);

    // exp has one-second resolution: a token renewed within the same second as the first
    // was issued would expire at the same instant, so renew in a later second, as a client
    // renewing ahead of exp would. (Waiting on the clock is the subject here, not a sync.)
    const renewAt = issuedAtMs(pair.accessToken) + 1020;
    await new Promise((r) => setTimeout(r, Math.max(0, renewAt - Date.now())));
    const renewed = await call<TokenPair>(node.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    expect(renewed.status).toBe(200);
    // The new token's exp must be later than the old one's (iat has 1 s resolution).
    const ack = await emitAck(diligent.socket, "auth:refresh", { token: renewed.body.accessToken });
    expect(ack.ok).toBe(true);

    const dropped = await lazy.revoked;
    expect(dropped).toMatchObject({ reason: "token_expired", disconnectReason: "io server disconnect" });
    // Dropped at its exp (iat + 4 s, one-second resolution), not before.
    expect(Date.now()).toBeGreaterThanOrEqual(issuedAtMs(pair.accessToken) + 4000 - 50);
    expect(diligent.socket.connected).toBe(true);
    expect(ack.expiresAt).toBeGreaterThan(Date.now());

    // The renewed socket expires in its turn at its new exp: its timer moved, it did not vanish.
    const later = await diligent.revoked;
    expect(later.reason).toBe("token_expired");
    expect(Date.now()).toBeGreaterThanOrEqual(ack.expiresAt - 50);
  });

  it("auth:refresh with a token of another session is refused and changes nothing", async () => {
    const a = await register(node.url);
    const other = await call<TokenPair>(node.url, "POST", "/auth/login", { body: { username: a.user.username, password: "password-123" } });
    const s = await connect(node.url, a.accessToken);
    const ack = await emitAck(s.socket, "auth:refresh", { token: other.body.accessToken });
    expect(ack).toMatchObject({ ok: false, error: { code: "TOKEN_INVALID" } });
    expect((await s.revoked).reason).toBe("token_expired");
  });

  it("leaves no expiry timer behind when sockets disconnect", async () => {
    const pair = await register(node.url);
    const sockets = await Promise.all(Array.from({ length: 20 }, () => connect(node.url, pair.accessToken)));
    expect(node.app.gateway.pendingExpiryTimers).toBeGreaterThanOrEqual(20);
    const gone = sockets.map((s) => new Promise((r) => s.socket.once("disconnect", r)));
    sockets.forEach((s) => s.close());
    await Promise.all(gone);
    await expect.poll(() => node.app.gateway.pendingExpiryTimers, { timeout: 2000 }).toBe(0);
  });
});
