/** Rate limits, ops endpoints, metrics, and the promise that no secret reaches the logs. */
import { afterAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { call, register, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { connect, refusedCode } from "../helpers/sockets";

const nodes: TestNode[] = [];
async function node(env: Record<string, string> = {}) {
  const n = await startNode(env);
  nodes.push(n);
  return n;
}
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

describe("rate limits", () => {
  it("failed logins per username: 429 with Retry-After, even with the right password", async () => {
    const n = await node({ RATE_LIMIT_LOGIN_USER: "3/1m" });
    const user = await register(n.url);
    for (let i = 0; i < 3; i++) {
      const r = await call(n.url, "POST", "/auth/login", { body: { username: user.user.username, password: "wrong-password" } });
      expect(r.status).toBe(401);
    }
    const blocked = await call(n.url, "POST", "/auth/login", { body: { username: user.user.username, password: "password-123" } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe("RATE_LIMITED");
    expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another username from the same address is unaffected.
    const other = await register(n.url);
    expect((await call(n.url, "POST", "/auth/login", { body: { username: other.user.username, password: "password-123" } })).status).toBe(200);
  });

  it("a concurrent burst of wrong passwords cannot get past the per-username limit", async () => {
    const n = await node({ RATE_LIMIT_LOGIN_USER: "5/15m" });
    const user = await register(n.url);
    // Letter case does not make a new key.
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const username = i % 2 ? user.user.username.toUpperCase() : user.user.username;
        return call(n.url, "POST", "/auth/login", { body: { username, password: "wrong-password" } });
      }),
    );
    const statuses = burst.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
  });

  it("password change guesses spend the per-user failed-login budget; a success clears it", async () => {
    const n = await node({ RATE_LIMIT_LOGIN_USER: "3/15m" });
    const user = await register(n.url);
    const guess = (oldPassword: string) => call(n.url, "POST", "/auth/password", { token: user.accessToken, body: { oldPassword, newPassword: "new-password-1" } });
    expect((await guess("wrong-1")).status).toBe(401);
    expect((await guess("wrong-2")).status).toBe(401);
    const right = await guess("password-123");
    expect(right.status).toBe(200); // third attempt, the right one: allowed, and the count starts over
    const again = (oldPassword: string) => call(n.url, "POST", "/auth/password", { token: right.body.accessToken, body: { oldPassword, newPassword: "new-password-2" } });
    for (let i = 0; i < 3; i++) expect((await again(`wrong-${i}`)).status).toBe(401);
    const blocked = await again("new-password-1");
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe("RATE_LIMITED");
  });

  it("login, register and guest calls per IP", async () => {
    const n = await node({ RATE_LIMIT_LOGIN_IP: "4/1m" });
    for (let i = 0; i < 4; i++) expect((await call(n.url, "POST", "/auth/guest", { body: {} })).status).toBe(201);
    const r = await call(n.url, "POST", "/auth/register", { body: { username: uniqueName(), password: "password-123" } });
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe("RATE_LIMITED");
  });

  it("handshakes per IP: refused with a coded connect_error", async () => {
    const n = await node({ RATE_LIMIT_HANDSHAKE_IP: "2/1m" });
    const user = await register(n.url);
    const a = await connect(n.url, user.accessToken);
    const b = await connect(n.url, user.accessToken);
    const third = await refusedCode(n.url, user.accessToken);
    expect(third.message).toBe("RATE_LIMITED");
    a.close();
    b.close();
  });

  it("refresh calls per session", async () => {
    const n = await node({ RATE_LIMIT_REFRESH_SESSION: "2/1m" });
    let pair: TokenPair = await register(n.url);
    for (let i = 0; i < 2; i++) {
      const r = await call<TokenPair>(n.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
      expect(r.status).toBe(200);
      pair = r.body;
    }
    const r = await call(n.url, "POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
    expect(r.status).toBe(429);
  });
});

describe("ops", () => {
  it("healthz, readyz and metrics", async () => {
    const n = await node();
    expect((await call(n.url, "GET", "/healthz")).status).toBe(200);
    const ready = await call(n.url, "GET", "/readyz");
    expect(ready.status).toBe(200);
    const user = await register(n.url);
    const s = await connect(n.url, user.accessToken);
    await refusedCode(n.url, "garbage");
    await call(n.url, "POST", "/auth/logout", { token: user.accessToken });
    await s.revoked;
    const m = await call<string>(n.url, "GET", "/metrics");
    expect(m.status).toBe(200);
    expect(m.body).toMatch(/gatehouse_handshakes_total\{[^}]*result="ok"[^}]*\} 1/);
    expect(m.body).toMatch(/gatehouse_handshakes_total\{[^}]*result="TOKEN_INVALID"[^}]*\} 1/);
    expect(m.body).toMatch(/gatehouse_revocations_total\{[^}]*reason="logout"/);
    expect(m.body).toMatch(/gatehouse_connected_sockets\{[^}]*\} 0/);
    expect(m.body).toMatch(/gatehouse_http_requests_total\{[^}]*route="\/auth\/register"[^}]*status="201"/);
    // An admin route refused before it matched is still labelled as admin traffic.
    expect((await call(n.url, "GET", "/admin/players", { token: user.accessToken })).status).toBe(401);
    const m2 = await call<string>(n.url, "GET", "/metrics");
    expect(m2.body).toMatch(/gatehouse_http_requests_total\{[^}]*route="\/admin\/\*"[^}]*status="401"/);
  });

  it("pages are served with a CSP that allows no inline or foreign script and no framing", async () => {
    const n = await node();
    for (const path of ["/", "/admin"]) {
      const res = await fetch(n.url + path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
    }
    const js = await fetch(n.url + "/static/game.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("x-content-type-options")).toBe("nosniff");
    expect(js.headers.get("cache-control")).toBe("public, max-age=0");
    // The same pages as static files carry the same protection.
    const asStatic = await fetch(n.url + "/static/admin.html");
    expect(asStatic.status).toBe(200);
    expect(asStatic.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(asStatic.headers.get("x-frame-options")).toBe("DENY");
  });

  it("closing a node reports readyz 503 and drops sockets as a transport close (clients would reconnect)", async () => {
    const n = await startNode();
    const user = await register(n.url);
    const s = await connect(n.url, user.accessToken);
    const reason = new Promise<string>((r) => s.socket.once("disconnect", r));
    await n.close();
    expect(await reason).toBe("transport close");
    expect(s.revocations).toEqual([]);
    s.close();
  });
});

describe("logs", () => {
  it("never contain a token, a refresh token or a password", async () => {
    const n = await node({ LOG_LEVEL: "trace" });
    const password = "very-secret-password-42";
    const reg = await call<TokenPair>(n.url, "POST", "/auth/register", { body: { username: uniqueName(), password } });
    const login = await call<TokenPair>(n.url, "POST", "/auth/login", { body: { username: reg.body.user.username, password } });
    await call(n.url, "POST", "/auth/login", { body: { username: reg.body.user.username, password: `${password}-wrong` } });
    const s = await connect(n.url, login.body.accessToken);
    const refreshed = await call<TokenPair>(n.url, "POST", "/auth/refresh", { body: { refreshToken: login.body.refreshToken } });
    await call(n.url, "POST", "/auth/refresh", { body: { refreshToken: login.body.refreshToken } }); // a retry within the grace
    await call(n.url, "POST", "/auth/refresh", { body: { refreshToken: refreshed.body.refreshToken } });
    await call(n.url, "POST", "/auth/refresh", { body: { refreshToken: login.body.refreshToken } }); // reuse
    await call(n.url, "GET", `/me?access_token=${reg.body.accessToken}`);
    await call(n.url, "POST", "/auth/logout", { token: reg.body.accessToken });
    await s.revoked;
    const all = n.logs.join("");
    expect(all.length).toBeGreaterThan(0);
    expect(all).toContain("refresh"); // the run was logged at all (route names)
    for (const secret of [password, reg.body.accessToken, reg.body.refreshToken, login.body.accessToken, login.body.refreshToken, refreshed.body.refreshToken, refreshed.body.accessToken]) {
      expect(all).not.toContain(secret);
      // Not even a signature or the random half of a refresh token.
      expect(all).not.toContain(secret.split(".").pop()!);
    }
  });
});
