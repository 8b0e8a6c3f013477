/** Rate limits, ops endpoints, metrics, and the promise that no secret reaches the logs. */
import { afterAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { adminLogin, call, register, uniqueName, type Reply } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { connect, refusedCode } from "../helpers/sockets";

const nodes: TestNode[] = [];
async function node(env: Record<string, string | undefined> = {}) {
  const n = await startNode(env);
  nodes.push(n);
  return n;
}
let redis: RedisProcess | undefined;
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await redis?.stop();
});

/** A node behind one trusted proxy hop on its own Redis (limits cluster-wide), so a test picks the client address. */
async function proxiedNode(env: Record<string, string> = {}) {
  redis ??= await startRedis();
  return node({ REDIS_URL: redis.url, TRUST_PROXY: "1", ...env });
}
const from = (address: string) => ({ "x-forwarded-for": address });
const loginFrom = (url: string, address: string, username: string, password: string): Promise<Reply> =>
  call(url, "POST", "/auth/login", { body: { username, password }, headers: from(address) });
const expectLimited = (r: Reply) => {
  expect(r.status).toBe(429);
  expect(r.body.error.code).toBe("RATE_LIMITED");
  expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
};

describe("failed-login budget per username AND address", () => {
  it("ten wrong passwords from one address refuse that address only: the owner elsewhere logs in", async () => {
    const n = await proxiedNode({ RATE_LIMIT_LOGIN_USER: "10/15m" });
    const user = await register(n.url);
    const name = user.user.username;
    for (let i = 0; i < 10; i++) expect((await loginFrom(n.url, "198.51.100.10", name, `wrong-pass-${i}`)).status).toBe(401);
    expectLimited(await loginFrom(n.url, "198.51.100.10", name, "password-123"));
    expect((await loginFrom(n.url, "198.51.100.11", name, "password-123")).status).toBe(200);
    // The attacker's address stays refused after the owner's success elsewhere.
    expectLimited(await loginFrom(n.url, "198.51.100.10", name.toUpperCase(), "password-123"));
  });

  it("the admin account cannot be locked out from another address either", async () => {
    const n = await proxiedNode({ RATE_LIMIT_LOGIN_USER: "10/15m" });
    for (let i = 0; i < 10; i++) expect((await loginFrom(n.url, "198.51.100.20", "admin", `wrong-pass-${i}`)).status).toBe(401);
    expectLimited(await loginFrom(n.url, "198.51.100.20", "admin", "admin-password-1"));
    const ok = await loginFrom(n.url, "198.51.100.21", "admin", "admin-password-1");
    expect(ok.status).toBe(200);
    expect(ok.body.user.role).toBe("admin");
  });

  it("password change guesses and login guesses from one address share one budget", async () => {
    const n = await proxiedNode({ RATE_LIMIT_LOGIN_USER: "4/15m" });
    const user = await register(n.url);
    const name = user.user.username;
    const change = (address: string, oldPassword: string) =>
      call(n.url, "POST", "/auth/password", { token: user.accessToken, body: { oldPassword, newPassword: "new-password-1" }, headers: from(address) });
    expect((await loginFrom(n.url, "198.51.100.30", name, "wrong-pass-1")).status).toBe(401);
    expect((await change("198.51.100.30", "wrong-pass-2")).status).toBe(401);
    expect((await loginFrom(n.url, "198.51.100.30", name, "wrong-pass-3")).status).toBe(401);
    expect((await change("198.51.100.30", "wrong-pass-4")).status).toBe(401);
    expectLimited(await change("198.51.100.30", "password-123"));
    expectLimited(await loginFrom(n.url, "198.51.100.30", name, "password-123"));
    // The same token from another address has its own budget; the right password works and clears it.
    expect((await change("198.51.100.31", "wrong-pass-5")).status).toBe(401);
    expect((await change("198.51.100.31", "password-123")).status).toBe(200);
  });

  it("IPv6 addresses share the budget per /64, and an IPv4-mapped address is its IPv4 one", async () => {
    const n = await proxiedNode({ RATE_LIMIT_LOGIN_USER: "3/15m" });
    const user = await register(n.url);
    const name = user.user.username;
    expect((await loginFrom(n.url, "2001:db8:1:2::1", name, "wrong-pass-1")).status).toBe(401);
    expect((await loginFrom(n.url, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", name, "wrong-pass-2")).status).toBe(401);
    expect((await loginFrom(n.url, "2001:0db8:0001:0002::ffff", name, "wrong-pass-3")).status).toBe(401);
    expectLimited(await loginFrom(n.url, "2001:db8:1:2::99", name, "password-123"));
    expect((await loginFrom(n.url, "2001:db8:1:3::1", name, "password-123")).status).toBe(200);

    const other = await register(n.url);
    for (let i = 0; i < 3; i++) expect((await loginFrom(n.url, "::ffff:198.51.100.40", other.user.username, `wrong-pass-${i}`)).status).toBe(401);
    expectLimited(await loginFrom(n.url, "198.51.100.40", other.user.username, "password-123"));
  });

  it("guessing from many addresses hits a per-username ceiling that spares addresses the owner logged in from", async () => {
    const n = await proxiedNode({ RATE_LIMIT_LOGIN_USER: "10/15m", RATE_LIMIT_LOGIN_USER_NEW_ADDRESS: "5/15m" });
    const user = await register(n.url);
    const name = user.user.username;
    expect((await loginFrom(n.url, "198.51.100.50", name, "password-123")).status).toBe(200); // the owner's usual address
    for (let i = 0; i < 5; i++) expect((await loginFrom(n.url, `203.0.113.${i + 1}`, name, "wrong-password")).status).toBe(401);
    // The ceiling is spent: every new address is refused, even with the right password...
    expectLimited(await loginFrom(n.url, "203.0.113.99", name, "wrong-password"));
    expectLimited(await loginFrom(n.url, "203.0.113.98", name, "password-123"));
    // ...but the owner's known address is not, nor is another account.
    expect((await loginFrom(n.url, "198.51.100.50", name, "password-123")).status).toBe(200);
    const other = await register(n.url);
    expect((await loginFrom(n.url, "203.0.113.99", other.user.username, "password-123")).status).toBe(200);
  });
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

  it("refresh calls per client address, spent by garbage tokens too", async () => {
    const n = await proxiedNode({ RATE_LIMIT_REFRESH_IP: "3/1m" });
    const pair = await register(n.url);
    const refresh = (address: string, refreshToken: string) => call(n.url, "POST", "/auth/refresh", { body: { refreshToken }, headers: from(address) });
    for (let i = 0; i < 3; i++) expect((await refresh("2001:db8:9:9::1", `garbage-${i}`)).status).toBe(401);
    expectLimited(await refresh("2001:db8:9:9::2", pair.refreshToken)); // same /64
    expect((await refresh("198.51.100.60", pair.refreshToken)).status).toBe(200);
  });

  it("GET /sessions and DELETE /sessions/:id per user: a burst gets 429 with Retry-After, other users are unaffected", async () => {
    const n = await node({ RATE_LIMIT_SESSIONS_USER: "5/1m" });
    const user = await register(n.url);
    const burst = await Promise.all(Array.from({ length: 8 }, () => call(n.url, "GET", "/sessions", { token: user.accessToken })));
    expect(burst.filter((r) => r.status === 200)).toHaveLength(5);
    for (const r of burst.filter((r) => r.status !== 200)) expectLimited(r);
    expectLimited(await call(n.url, "DELETE", `/sessions/${user.sessionId}`, { token: user.accessToken }));
    const other = await register(n.url);
    expect((await call(n.url, "GET", "/sessions", { token: other.accessToken })).status).toBe(200);
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

  it("/metrics labels a request by its route pattern whatever its status, and static files as static", async () => {
    const n = await node();
    const user = await register(n.url);
    expect((await call(n.url, "POST", "/auth/login", { body: { username: user.user.username, password: "wrong-password" } })).status).toBe(401);
    expect((await call(n.url, "POST", "/auth/login", { body: { username: 42 } })).status).toBe(400);
    expect((await call(n.url, "DELETE", "/sessions/not-a-session", { token: user.accessToken })).status).toBe(404);
    expect((await fetch(`${n.url}/static/game.js`)).status).toBe(200);
    expect((await fetch(`${n.url}/static/no-such-file.js`)).status).toBe(404);
    const m = (await call<string>(n.url, "GET", "/metrics")).body;
    const routes = (status: number) => [...m.matchAll(new RegExp(`gatehouse_http_requests_total\\{[^}]*route="([^"]+)"[^}]*status="${status}"`, "g"))].map((x) => x[1]);
    expect(routes(401)).toEqual(["/auth/login"]);
    expect(routes(400)).toEqual(["/auth/login"]);
    expect(routes(404).sort()).toEqual(["/sessions/:sessionId", "/static/*"]);
    expect(routes(200)).toContain("/static/*");
    expect(m).not.toMatch(/route="\/login"/);
  });

  it("CORS_ORIGINS=* lets any origin call the API and open a socket (tokens are headers, never cookies)", async () => {
    const n = await node({ CORS_ORIGINS: "*" });
    const origin = "https://some-game.example";
    const preflight = await fetch(`${n.url}/auth/login`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect((await fetch(`${n.url}/healthz`, { headers: { origin } })).headers.get("access-control-allow-origin")).toBe("*");
    const poll = await fetch(`${n.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    expect(poll.headers.get("access-control-allow-origin")).toBe("*");
    await poll.text();
  });

  it("the startup logs say how to get an admin account when none is configured", async () => {
    const bare = await node({ ADMIN_USERNAME: undefined, ADMIN_PASSWORD: undefined, LOG_LEVEL: "info" });
    expect(bare.logs.join("")).toMatch(/no admin account.*ADMIN_USERNAME.*ADMIN_PASSWORD/);
    const withAdmin = await node({ LOG_LEVEL: "info" });
    expect(withAdmin.logs.join("")).not.toContain("no admin account");
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
  const lines = (n: TestNode) => n.logs.join("").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);

  it("admin actions are logged at info, one line each, naming the admin, the action and its target", async () => {
    const n = await node({ LOG_LEVEL: "info" });
    const admin = await adminLogin(n.url);
    const player = await register(n.url);
    const id = player.user.id;
    expect((await call(n.url, "POST", `/admin/sessions/${player.sessionId}/revoke`, { token: admin.accessToken, body: {} })).status).toBe(202);
    expect((await call(n.url, "POST", `/admin/users/${id}/kick`, { token: admin.accessToken, body: { reason: "spamming" } })).status).toBe(202);
    expect((await call(n.url, "POST", `/admin/users/${id}/ban`, { token: admin.accessToken, body: {} })).status).toBe(202);
    expect((await call(n.url, "DELETE", `/admin/users/${id}/ban`, { token: admin.accessToken })).status).toBe(204);
    expect((await call(n.url, "GET", "/admin/players", { token: admin.accessToken })).status).toBe(200);
    const actions = lines(n).filter((l) => l.msg === "admin action");
    expect(actions.map((l) => [l.level, l.admin, l.action])).toEqual([
      [30, "admin", "POST /admin/sessions/:sessionId/revoke"],
      [30, "admin", "POST /admin/users/:userId/kick"],
      [30, "admin", "POST /admin/users/:userId/ban"],
      [30, "admin", "DELETE /admin/users/:userId/ban"],
    ]);
    expect(actions[1]!.path).toBe(`/admin/users/${id}/kick`);
    expect(JSON.stringify(actions)).not.toContain(admin.accessToken.split(".").pop()!);
  });

  it("a login refused by the failed-login budget is logged at info with the username, never the password", async () => {
    const n = await node({ LOG_LEVEL: "info", RATE_LIMIT_LOGIN_USER: "2/15m" });
    const user = await register(n.url);
    const name = user.user.username;
    for (let i = 0; i < 2; i++) await call(n.url, "POST", "/auth/login", { body: { username: name, password: "wrong-password" } });
    expect((await call(n.url, "POST", "/auth/login", { body: { username: name, password: "password-123" } })).status).toBe(429);
    const lockouts = lines(n).filter((l) => l.msg === "login locked out");
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]).toMatchObject({ level: 30, username: name });
    expect(n.logs.join("")).not.toContain("password-123");
  });

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
