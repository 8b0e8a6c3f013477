/**
 * Nothing grows without bound: revoke many sessions with short lifetimes and
 * watch the revocation marks (node cache and store) shrink back to nothing once
 * the tokens they cover have expired. The clock is injected, so no waiting.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { MemoryStore } from "../../server/store/memory";
import { call, register } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";

describe("bounded revocation state", () => {
  let node: TestNode | undefined;
  afterAll(() => node?.close());

  it("marks and sessions disappear when the tokens they cover expire", async () => {
    // Frozen while the state grows (a loaded machine must not expire the first marks before the
    // count), then moved past every expiry at once.
    const clock = { t: Date.now(), now() { return this.t; } };
    node = await startNode({ ACCESS_TOKEN_TTL: "2s", REFRESH_TOKEN_TTL: "4s" }, { clock });
    const store = node.app.store as MemoryStore;
    const pairs: TokenPair[] = [];
    for (let i = 0; i < 10; i++) pairs.push(await register(node.url));
    for (const p of pairs) {
      for (let j = 0; j < 4; j++) {
        const r = await call<TokenPair>(node.url, "POST", "/auth/login", { body: { username: p.user.username, password: "password-123" } });
        await call(node.url, "POST", "/auth/logout", { token: r.body.accessToken });
      }
      await call(node.url, "POST", "/auth/logout-all", { token: p.accessToken });
    }
    // Guests: one playing on, one logged out; neither can ever log in again once its sessions are gone.
    await call(node.url, "POST", "/auth/guest", { body: {} });
    const leaving = await call<TokenPair>(node.url, "POST", "/auth/guest", { body: {} });
    await call(node.url, "POST", "/auth/logout", { token: leaving.body.accessToken });
    const grown = { cache: node.app.cache.size(), store: store.stats() };
    expect(grown.store.users).toBe(10 + 2 + 1);
    expect(grown.cache).toBeGreaterThanOrEqual(10 * 4 * 2 + 10); // sid + jti per logout, a user mark per logout-all
    expect(grown.store.marks).toBe(grown.cache);

    // Past every access token's exp (+ tolerance) and every refresh token's expiry.
    clock.t += 60_000;
    node.app.cache.purge(clock.now());
    store.sweep(clock.now());
    expect(node.app.cache.size()).toBe(0);
    expect(store.stats()).toMatchObject({ marks: 0, sessions: 0, refresh: 0, users: 10 + 1 /* admin; the guests are gone */ });
  });
});
