/**
 * Behind a load balancer (TRUST_PROXY=1: one proxy hop appends the client's
 * address to X-Forwarded-For): per-IP limits key on the address the proxy saw,
 * the same for HTTP and for socket.io handshakes, and a client cannot dodge
 * them by sending its own X-Forwarded-For (the leftmost entries are its own).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { call } from "../helpers/http";
import { connect, refusedCode, type TestSocket } from "../helpers/sockets";
import { startCluster, type LocalCluster } from "../helpers/cluster";

describe("per-IP limits behind one trusted proxy", () => {
  let cluster: LocalCluster;
  let url: string;
  const open: TestSocket[] = [];

  beforeAll(async () => {
    cluster = await startCluster(1, { TRUST_PROXY: "1", RATE_LIMIT_LOGIN_IP: "3/1m", RATE_LIMIT_HANDSHAKE_IP: "3/1m" });
    url = cluster.nodes[0]!.url;
  });
  afterAll(async () => {
    for (const s of open) s.close();
    await cluster?.stop();
  });

  /** What the proxy forwards: whatever the client claimed, then the address it really came from. */
  const xff = (spoofed: number, real: string) => ({ "x-forwarded-for": `203.0.113.${spoofed}, ${real}` });

  it("HTTP: the limit follows the proxy-seen address, not the client-supplied one", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(url, "POST", "/auth/guest", { body: {}, headers: xff(i, "198.51.100.1") })).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
    // Another real client behind the same proxy has its own budget.
    expect((await call(url, "POST", "/auth/guest", { body: {}, headers: xff(9, "198.51.100.2") })).status).toBe(201);
  });

  it("socket.io: the handshake limit follows the same address", async () => {
    const guest = await call<TokenPair>(url, "POST", "/auth/guest", { body: {}, headers: xff(0, "198.51.100.3") });
    expect(guest.status).toBe(201);
    const token = guest.body.accessToken;
    for (let i = 0; i < 3; i++) {
      const s = await connect(url, token, { extraHeaders: xff(i, "198.51.100.4"), reconnection: false });
      open.push(s);
    }
    const fourth = await refusedCode(url, token, { extraHeaders: xff(3, "198.51.100.4"), reconnection: false });
    expect(fourth).toMatchObject({ message: "RATE_LIMITED", data: { code: "RATE_LIMITED" } });
    const other = await connect(url, token, { extraHeaders: xff(4, "198.51.100.5"), reconnection: false });
    open.push(other);
  });
});
