/**
 * The client SDK against a real in-process node with 2 s access tokens:
 * in-band renewal keeps a socket alive, revocations stop everything, refused
 * handshakes are coded, refreshes are single-flight, password change keeps
 * the client usable.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GatehouseClient, GatehouseClientError, type RevokedEvent } from "../../client/sdk";
import { ErrorCode } from "../../shared/errors";
import { Events, RevocationReason } from "../../shared/protocol";
import { adminLogin, call, uniqueName } from "../helpers/http";
import { startNode, type TestNode } from "../helpers/node";
import { deferred, waitFor, within } from "../helpers/wait";

const TTL_MS = 2000;

describe("client SDK (2 s access tokens)", () => {
  let node: TestNode;
  const clients: GatehouseClient[] = [];
  let adminToken: string;

  beforeAll(async () => {
    node = await startNode({ ACCESS_TOKEN_TTL: "2s" });
  });
  afterEach(() => {
    clients.splice(0).forEach((c) => c.close());
  });
  afterAll(() => node?.close());

  /** A client that counts the HTTP refreshes it makes. */
  function client(): GatehouseClient & { refreshCalls: number } {
    let refreshCalls = 0;
    const c = new GatehouseClient({
      baseUrl: node.url,
      device: "sdk-test",
      fetch: (input, init) => {
        if (String(input).endsWith("/auth/refresh")) refreshCalls++;
        return fetch(input, init);
      },
    });
    clients.push(c);
    return Object.defineProperty(c, "refreshCalls", { get: () => refreshCalls }) as GatehouseClient & { refreshCalls: number };
  }

  /** Resolves with the first `revoked` event (and records every one). */
  function revokedOf(c: GatehouseClient): { first: Promise<RevokedEvent>; all: RevokedEvent[] } {
    const all: RevokedEvent[] = [];
    const d = deferred<RevokedEvent>();
    c.on("revoked", (e) => {
      all.push(e);
      d.resolve(e);
    });
    return { first: d.promise, all };
  }

  async function admin(): Promise<string> {
    adminToken ??= (await adminLogin(node.url)).accessToken;
    // Admin tokens live 2 s here too: take a fresh one when the cached one is near its end.
    const me = await call(node.url, "GET", "/me", { token: adminToken });
    if (me.status !== 200) adminToken = (await adminLogin(node.url)).accessToken;
    return adminToken;
  }

  it("keeps one socket alive across several token lifetimes by renewing in band (no reconnect)", async () => {
    const c = client();
    await c.guest();
    const socket = await c.connect();
    let connects = 1; // the one connect() awaited
    let disconnects = 0;
    socket.on("connect", () => connects++);
    socket.on("disconnect", () => disconnects++);
    const revoked = revokedOf(c);
    const errors: GatehouseClientError[] = [];
    c.on("error", (e) => errors.push(e));
    let renewals = 0;
    c.on("session", (p) => p && renewals++);
    await c.joinRoom("sdk-alive");
    const started = Date.now();

    // Time passing IS the subject: wait until more than three lifetimes have gone by.
    await waitFor(() => Date.now() - started > 3 * TTL_MS + 300, { timeoutMs: 4 * TTL_MS + 2000, intervalMs: 100 });

    expect(socket.connected).toBe(true);
    expect(connects).toBe(1);
    expect(disconnects).toBe(0);
    expect(revoked.all).toEqual([]);
    expect(errors).toEqual([]);
    // At least one renewal per lifetime, all of them single HTTP calls.
    expect(renewals).toBeGreaterThanOrEqual(3);
    expect(c.refreshCalls).toBe(renewals);
    // The server's copy of the claims moved on with the renewals.
    const server = [...node.app.io.of("/").sockets.values()].find((s) => s.data.claims?.sid === c.sessionId);
    expect(server?.data.claims.exp).toBeGreaterThan(Math.floor(started / 1000) + 3 * (TTL_MS / 1000));
    // Still a working game socket.
    await expect(c.chat("still here")).resolves.toBeUndefined();
  }, 20_000);

  it("a socket that outlived its token (starved timers, a sleeping laptop) refreshes and reconnects instead of ending", async () => {
    const c = client();
    await c.guest();
    const socket = await c.connect();
    const revoked = revokedOf(c);
    const expired = deferred<string>();
    socket.on(Events.SESSION_REVOKED, (p) => expired.resolve(p.reason));
    const back = deferred();
    socket.on("disconnect", () => socket.once("connect", () => back.resolve()));
    // Simulate the starvation: the background refresh never runs.
    (c as unknown as { clearRefreshTimer(): void }).clearRefreshTimer();

    expect(await within(expired.promise, 2 * TTL_MS + 1000, "token_expired")).toBe(RevocationReason.TOKEN_EXPIRED);
    await within(back.promise, 3000, "reconnect");
    expect(socket.connected).toBe(true);
    expect(revoked.all).toEqual([]);
    expect(c.refreshPending).toBe(true);
    await expect(c.joinRoom("sdk-recovered")).resolves.toMatchObject({ room: { id: "sdk-recovered" } });
  });

  it("an admin kick surfaces revoked(kicked), stops the timers and never reconnects", async () => {
    const c = client();
    const pair = await c.guest();
    const socket = await c.connect();
    let connects = 0;
    socket.on("connect", () => connects++);
    const revoked = revokedOf(c);
    await c.joinRoom("sdk-kick");

    const kick = await call(node.url, "POST", `/admin/users/${pair.user.id}/kick`, { token: await admin(), body: { reason: "test" } });
    expect(kick.status).toBe(202);

    const e = await within(revoked.first, 2000, "revoked event");
    expect(e).toEqual({ reason: RevocationReason.KICKED, message: "You were kicked by an admin. Reason: test" });
    expect(socket.active).toBe(false);
    expect(socket.connected).toBe(false);
    expect(c.isLoggedIn).toBe(false);
    expect(c.refreshPending).toBe(false);
    expect(c.socket).toBeUndefined();
    // Absence of a reconnect can only be shown by letting the reconnection delay pass.
    await new Promise((r) => setTimeout(r, 1500));
    expect(connects).toBe(0);
    expect(revoked.all).toHaveLength(1);
    expect(node.app.gateway.isSessionLocal(pair.sessionId)).toBe(false);
    // Calls after the end are refused locally, with a code.
    await expect(c.connect()).rejects.toMatchObject({ name: "GatehouseClientError", code: ErrorCode.TOKEN_MISSING });
  });

  it("a refused handshake surfaces a GatehouseClientError with the server's code", async () => {
    const c = client();
    const pair = await c.guest();
    const revoke = await call(node.url, "POST", `/admin/sessions/${pair.sessionId}/revoke`, { token: await admin() });
    expect(revoke.status).toBe(202);
    const errors: GatehouseClientError[] = [];
    c.on("error", (e) => errors.push(e));

    const err = await c.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GatehouseClientError);
    expect(err).toMatchObject({ code: ErrorCode.SESSION_REVOKED });
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.SESSION_REVOKED]);
    expect(c.socket?.active).toBe(false);

    // The background refresh then finds the session dead and ends the client, with a reason.
    const revoked = revokedOf(c);
    expect(await within(revoked.first, 3000, "revoked after refresh")).toMatchObject({ reason: RevocationReason.SESSION_REVOKED });
    expect(c.isLoggedIn).toBe(false);

    // HTTP refusals are coded the same way.
    const me = await call(node.url, "GET", "/me", { token: pair.accessToken });
    expect(me.body.error.code).toBe(ErrorCode.SESSION_REVOKED);
    const stranger = client();
    await expect(stranger.login(uniqueName("nobody"), "wrong-password-1")).rejects.toMatchObject({ code: ErrorCode.CREDENTIALS_INVALID, status: 401 });
    await expect(stranger.me()).rejects.toMatchObject({ code: ErrorCode.TOKEN_MISSING });
  });

  it("two concurrent refreshes share one HTTP call; the rotated token is never presented twice", async () => {
    const c = client();
    const first = await c.guest();
    const socket = await c.connect();
    const revoked = revokedOf(c);

    const [a, b] = await Promise.all([c.refresh(), c.refresh()]);
    expect(c.refreshCalls).toBe(1);
    expect(a).toBe(b);
    expect(a.refreshToken).not.toBe(first.refreshToken);
    expect(a.sessionId).toBe(first.sessionId);

    // Another burst after the first settled: again one call, still no REFRESH_REUSED.
    const burst = await Promise.all([c.refresh(), c.refresh(), c.me(), c.refresh()]);
    expect(c.refreshCalls).toBe(2);
    expect(burst[3].refreshToken).not.toBe(a.refreshToken);
    expect(await c.me()).toMatchObject({ id: first.user.id });
    expect(socket.connected).toBe(true);
    expect(revoked.all).toEqual([]);

    // The server agrees: the session is alive and the first token is now a reused one.
    const sessions = await c.sessions();
    expect(sessions.find((s) => s.current)?.sessionId).toBe(first.sessionId);
  });

  it("a password change through the SDK keeps the client usable; the other device is revoked", async () => {
    const username = uniqueName("sdkpw");
    const c = client();
    await c.register(username, "password-123", "laptop");
    const socket = await c.connect();
    await c.joinRoom("sdk-pw");
    const mine = revokedOf(c);
    const other = client();
    await other.login(username, "password-123", "phone");
    await other.connect();
    const theirs = revokedOf(other);
    const reconnected = deferred();
    socket.on("connect", () => reconnected.resolve());

    const changing = c.changePassword("password-123", "password-456");
    await new Promise((r) => setImmediate(r));
    // A refresh asked for while the change is in flight waits for it (the change kills the
    // refresh token it would present) and then has nothing left to do.
    const refreshing = c.refresh();
    const pair = await changing;
    expect(c.sessionId).toBe(pair.sessionId);
    expect((await refreshing).sessionId).toBe(pair.sessionId);

    expect(await within(theirs.first, 2000, "other device revoked")).toMatchObject({ reason: RevocationReason.PASSWORD_CHANGED });
    await within(reconnected.promise, 3000, "reconnect with the new pair");
    expect(socket.connected).toBe(true);
    expect(mine.all).toEqual([]);
    expect(await c.me()).toMatchObject({ username });
    const joined = await c.joinRoom("sdk-pw");
    expect(joined.you.username).toBe(username);
    // The socket is on the new session server-side.
    const server = [...node.app.io.of("/").sockets.values()].find((s) => s.id === socket.id);
    expect(server?.data.claims.sid).toBe(pair.sessionId);

    // The old password is gone, the new one works.
    const fresh = client();
    await expect(fresh.login(username, "password-123")).rejects.toMatchObject({ code: ErrorCode.CREDENTIALS_INVALID });
    await expect(fresh.login(username, "password-456")).resolves.toMatchObject({ user: { username } });
    // A wrong old password changes nothing and revokes nothing.
    await expect(c.changePassword("not-the-password", "password-789")).rejects.toMatchObject({ code: ErrorCode.CREDENTIALS_INVALID });
    expect(socket.connected).toBe(true);
    expect(mine.all).toEqual([]);
  });

  it("logout ends the session quietly: no revoked event, socket closed, storage cleared", async () => {
    const c = client();
    const pair = await c.guest();
    const socket = await c.connect();
    const revoked = revokedOf(c);
    const gone = deferred<string>();
    socket.on("disconnect", (r) => gone.resolve(r));
    await c.logout();
    expect(await within(gone.promise, 2000, "disconnect")).toBe("io client disconnect");
    expect(c.isLoggedIn).toBe(false);
    expect(revoked.all).toEqual([]);
    const me = await call(node.url, "GET", "/me", { token: pair.accessToken });
    // This very token is blacklisted (or, if the SDK had renewed it already, its session is gone).
    expect([ErrorCode.TOKEN_REVOKED, ErrorCode.SESSION_REVOKED]).toContain(me.body.error.code);
  });

  it("routes the typed game events through the returned socket", async () => {
    const a = client();
    const b = client();
    await Promise.all([a.guest(), b.guest()]);
    const [sa] = await Promise.all([a.connect(), b.connect()]);
    await a.joinRoom("sdk-game");
    const joined = await b.joinRoom("sdk-game");
    const chat = deferred<string>();
    sa.on(Events.CHAT_MESSAGE, (m) => chat.resolve(`${m.username}: ${m.text}`));
    await b.chat("hello from b");
    expect(await within(chat.promise, 2000, "chat")).toBe(`${b.user!.username}: hello from b`);
    const moved = deferred<number>();
    sa.on(Events.STATE, (st) => {
      const p = st.players.find((x) => x.playerId === joined.you.playerId);
      if (p && p.x !== joined.you.x) moved.resolve(p.x);
    });
    expect(b.move(joined.you.x > 400 ? 0 : 800, joined.you.y)).toBe(true);
    await within(moved.promise, 2000, "move seen in state");
    await expect(b.joinRoom("bad room!")).rejects.toMatchObject({ code: ErrorCode.VALIDATION_FAILED });
  });
});
