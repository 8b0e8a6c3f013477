/**
 * Long access-token lifetimes: Node clamps a setTimeout delay above 2^31-1 ms (~24.8 days) to
 * 1 ms, so with ACCESS_TOKEN_TTL=30d an expiry timer set for the token's exp fired at once and
 * dropped every socket as token_expired. Timers are chained with a capped delay instead.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatehouseClient } from "../../client/sdk";
import { register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { connect, emitAck, type TestSocket } from "../helpers/sockets";

describe("ACCESS_TOKEN_TTL=30d", () => {
  let node: TestNode;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    node = await startNode({ ACCESS_TOKEN_TTL: "30d" });
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await node?.close();
  });

  it("a socket stays connected past the moment an overflowed timer fires, and after an in-band refresh", async () => {
    const pair = await register(node.url);
    expect(pair.expiresIn * 1000).toBeGreaterThan(2 ** 31 - 1);
    const s = await connect(node.url, pair.accessToken);
    open.push(s);
    // An overflowed timer fires 1 ms after the connection: a round trip later, the socket must still be there.
    expect(await emitAck(s.socket, "room:join", { roomId: "long" })).toMatchObject({ ok: true });
    const refreshed = await emitAck(s.socket, "auth:refresh", { token: pair.accessToken });
    expect(refreshed).toMatchObject({ ok: true, expiresAt: expect.any(Number) });
    expect(await emitAck(s.socket, "room:leave", {})).toMatchObject({ ok: true });
    expect(s.socket.connected).toBe(true);
    expect(s.revocations).toEqual([]);
    expect(node.app.gateway.pendingExpiryTimers).toBe(1);
  });

  it("the SDK does not refresh at once when its refresh is due more than 24.8 days away", async () => {
    let refreshCalls = 0;
    const c = new GatehouseClient({
      baseUrl: node.url,
      refreshAt: 0.95, // due after 28.5 days
      fetch: (input, init) => {
        if (String(input).endsWith("/auth/refresh")) refreshCalls++;
        return fetch(input, init);
      },
    });
    try {
      await c.guest();
      const socket = await c.connect();
      // An overflowed timer fires 1 ms after the pair arrived: a connection and a round trip later, no refresh.
      expect(await emitAck(socket, "room:join", { roomId: "sdk-long" })).toMatchObject({ ok: true });
      expect(refreshCalls).toBe(0);
    } finally {
      c.close();
    }
  });
});
