/**
 * The bad-input matrix: every malformed or hostile token is refused with the
 * right code over HTTP and at the handshake, bad bodies get 400/413, and the
 * node keeps serving everyone else throughout.
 */
import { createHmac, generateKeyPairSync } from "node:crypto";
import net from "node:net";
import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TokenPair } from "../../shared/claims";
import { call, register } from "../helpers/http";
import { TEST_SECRET, startNode, type TestNode } from "../helpers/node";
import { connect, emitAck, refusedCode } from "../helpers/sockets";

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
function hmacToken(header: object, payload: object, secret = TEST_SECRET): string {
  const data = `${b64(header)}.${b64(payload)}`;
  return `${data}.${createHmac("sha256", secret).update(data).digest("base64url")}`;
}

describe("bad input", () => {
  let node: TestNode;
  let good: TokenPair;
  let claims: Record<string, unknown>;

  beforeAll(async () => {
    node = await startNode();
    good = await register(node.url);
    claims = jwt.decode(good.accessToken) as Record<string, unknown>;
  });
  afterAll(() => node?.close());

  const now = () => Math.floor(Date.now() / 1000);
  const { privateKey: rsa } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const { privateKey: ec } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const without = (key: string) => Object.fromEntries(Object.entries(claims).filter(([k]) => k !== key));

  const tokenCases: [string, () => unknown, string][] = [
    ["garbage", () => "not-a-jwt", "TOKEN_INVALID"],
    ["alg none", () => `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`, "TOKEN_INVALID"],
    ["alg none with a signature", () => hmacToken({ alg: "none" }, claims), "TOKEN_INVALID"],
    ["HS256 signed with another key", () => hmacToken({ alg: "HS256", typ: "JWT" }, claims, "another-secret-another-secret-another!"), "TOKEN_INVALID"],
    ["RS256", () => jwt.sign(claims, rsa, { algorithm: "RS256", noTimestamp: true }), "TOKEN_INVALID"],
    ["ES256", () => jwt.sign(claims, ec, { algorithm: "ES256", noTimestamp: true }), "TOKEN_INVALID"],
    ["HS256 header claiming RS256 (alg confusion)", () => hmacToken({ alg: "RS256", typ: "JWT" }, claims), "TOKEN_INVALID"],
    ["a kid header", () => hmacToken({ alg: "HS256", typ: "JWT", kid: "../../etc/passwd" }, claims), "TOKEN_INVALID"],
    ["a jku header", () => hmacToken({ alg: "HS256", jku: "https://evil.example/keys" }, claims), "TOKEN_INVALID"],
    ["non-numeric iat", () => hmacToken({ alg: "HS256", typ: "JWT" }, { ...claims, iat: "yesterday" }), "TOKEN_INVALID"],
    ["missing sid", () => hmacToken({ alg: "HS256", typ: "JWT" }, without("sid")), "TOKEN_INVALID"],
    ["missing ver", () => hmacToken({ alg: "HS256", typ: "JWT" }, without("ver")), "TOKEN_INVALID"],
    ["wrong issuer", () => hmacToken({ alg: "HS256", typ: "JWT" }, { ...claims, iss: "evil" }), "TOKEN_INVALID"],
    ["wrong audience", () => hmacToken({ alg: "HS256", typ: "JWT" }, { ...claims, aud: "other-game" }), "TOKEN_INVALID"],
    ["bad role", () => hmacToken({ alg: "HS256", typ: "JWT" }, { ...claims, role: "root" }), "TOKEN_INVALID"],
    ["expired beyond tolerance", () => hmacToken({ alg: "HS256", typ: "JWT" }, { ...claims, iat: now() - 100, exp: now() - 10 }), "TOKEN_EXPIRED"],
    ["a 100 KB token", () => `${b64({ alg: "HS256" })}.${"A".repeat(100 * 1024)}.sig`, "TOKEN_INVALID"],
    ["a 5 KB well-formed token", () => hmacToken({ alg: "HS256", typ: "JWT" }, { ...claims, pad: "x".repeat(5000) }), "TOKEN_INVALID"],
    ["a tampered payload", () => good.accessToken.replace(/\.[^.]+\./, `.${b64({ ...claims, role: "admin" })}.`), "TOKEN_INVALID"],
  ];

  it.each(tokenCases)("HTTP refuses %s", async (_name, make, code) => {
    const r = await call(node.url, "GET", "/me", { token: make() as string });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe(code);
    expect(r.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it.each(tokenCases)("the handshake refuses %s", async (_name, make, code) => {
    const r = await refusedCode(node.url, make());
    expect(r.message).toBe(code);
    expect(r.data).toEqual({ code, message: expect.any(String) });
  });

  it.each([
    ["a number", 42, "TOKEN_INVALID"],
    ["an object", { nested: true }, "TOKEN_INVALID"],
    ["an array", ["a", "b"], "TOKEN_INVALID"],
    ["missing", undefined, "TOKEN_MISSING"],
  ] as const)("the handshake refuses auth.token as %s", async (_name, token, code) => {
    expect((await refusedCode(node.url, token)).message).toBe(code);
  });

  it("refuses a token in the query string, on HTTP and at the handshake", async () => {
    const r = await call(node.url, "GET", `/me?access_token=${good.accessToken}`);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("TOKEN_INVALID");
    const hs = await refusedCode(node.url, undefined, { query: { token: good.accessToken } });
    expect(hs.message).toBe("TOKEN_INVALID");
  });

  it("a missing or malformed Authorization header", async () => {
    const none = await call(node.url, "GET", "/me");
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("TOKEN_MISSING");
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer/);
    const basic = await call(node.url, "GET", "/me", { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    expect(basic.body.error.code).toBe("TOKEN_INVALID");
  });

  it.each([
    ["malformed JSON", "/auth/login", { rawBody: "{not json" }, 400, "VALIDATION_FAILED"],
    ["a body over 16 KB", "/auth/register", { rawBody: JSON.stringify({ username: "x".repeat(17 * 1024) }) }, 413, "PAYLOAD_TOO_LARGE"],
    ["a JSON array", "/auth/login", { body: [1, 2] }, 400, "VALIDATION_FAILED"],
    ["a short username", "/auth/register", { body: { username: "ab", password: "password-123" } }, 400, "VALIDATION_FAILED"],
    ["a username kept for guests", "/auth/register", { body: { username: "Guest-abc", password: "password-123" } }, 400, "VALIDATION_FAILED"],
    ["a username with spaces", "/auth/register", { body: { username: "a b c", password: "password-123" } }, 400, "VALIDATION_FAILED"],
    ["a short password", "/auth/register", { body: { username: "valid_name", password: "short" } }, 400, "VALIDATION_FAILED"],
    ["a password over 128 chars", "/auth/register", { body: { username: "valid_name", password: "p".repeat(129) } }, 400, "VALIDATION_FAILED"],
    ["numbers for strings", "/auth/login", { body: { username: 12345, password: 12345678 } }, 400, "VALIDATION_FAILED"],
    ["an empty refresh body", "/auth/refresh", { body: {} }, 400, "VALIDATION_FAILED"],
    ["a garbage refresh token", "/auth/refresh", { body: { refreshToken: "garbage" } }, 401, "REFRESH_INVALID"],
    ["a well-formed unknown refresh token", "/auth/refresh", { body: { refreshToken: `abc.${"A".repeat(43)}` } }, 401, "REFRESH_INVALID"],
  ] as const)("POST with %s", async (_name, path, opts, status, code) => {
    const r = await call(node.url, "POST", path, opts as any);
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
  });

  it("headers too large for the HTTP parser (a 200 KB token) or non-HTTP garbage still get the error shape", async () => {
    const huge = await call(node.url, "GET", "/me", { token: "A".repeat(200 * 1024) });
    expect(huge.status).toBe(431);
    expect(huge.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    const garbage = await rawHttp(node.url, "NOT-HTTP\r\n\r\n");
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(garbage.split("\r\n\r\n")[1]!).error.code).toBe("VALIDATION_FAILED");
    expect((await call(node.url, "GET", "/me", { token: good.accessToken })).status).toBe(200);
  });

  it("unknown routes answer a coded 404", async () => {
    const r = await call(node.url, "GET", "/no/such/route");
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("NOT_FOUND");
  });

  it("garbage socket payloads are acked VALIDATION_FAILED and break nothing", async () => {
    const s = await connect(node.url, good.accessToken);
    try {
      for (const payload of [null, 42, "x", { token: 7 }, { token: "x".repeat(5000) }]) {
        const ack = await emitAck(s.socket, "auth:refresh", payload);
        expect(ack.ok).toBe(false);
      }
      expect((await emitAck(s.socket, "auth:refresh", { token: 12 })).error.code).toBe("VALIDATION_FAILED");
      // An event without an ack callback must not crash anything either.
      s.socket.emit("auth:refresh", { token: "nope" });
      expect((await emitAck(s.socket, "auth:refresh", { token: good.accessToken })).ok).toBe(true);
      // auth:refresh with another user's valid token is refused.
      const other = await register(node.url);
      expect((await emitAck(s.socket, "auth:refresh", { token: other.accessToken })).error.code).toBe("TOKEN_INVALID");
    } finally {
      s.close();
    }
  });

  it("every validated socket event names the failing field, in the words HTTP uses", async () => {
    const http = await call(node.url, "POST", "/auth/refresh", { body: {} });
    expect(http.body.error).toEqual({ code: "VALIDATION_FAILED", message: "Invalid refreshToken: Invalid input: expected string, received undefined" });
    const s = await connect(node.url, good.accessToken);
    const refused = async (event: string, payload: unknown) => {
      const ack = await emitAck(s.socket, event, payload);
      expect(ack.ok).toBe(false);
      expect(ack.error.code).toBe("VALIDATION_FAILED");
      return ack.error.message as string;
    };
    try {
      expect(await refused("auth:refresh", {})).toBe("Invalid token: Invalid input: expected string, received undefined");
      expect(await refused("auth:refresh", null)).toMatch(/^Invalid payload: /);
      expect(await refused("room:join", { roomId: "has space" })).toMatch(/^Invalid roomId: /);
      expect(await refused("ttt:play", { cell: 9 })).toMatch(/^Invalid cell: /);
      await emitAck(s.socket, "room:join", { roomId: "named" });
      expect(await refused("chat:send", { text: " \u200B " })).toMatch(/^Invalid text: /);
      expect(await refused("move", { x: "left", y: 0 })).toMatch(/^Invalid x: /);
    } finally {
      s.close();
    }
  });

  it("the node still serves after all of it", async () => {
    const fresh = await register(node.url);
    expect((await call(node.url, "GET", "/me", { token: fresh.accessToken })).status).toBe(200);
    const s = await connect(node.url, fresh.accessToken);
    expect(s.socket.connected).toBe(true);
    s.close();
  });
});

/** Sends raw bytes on a fresh TCP connection and resolves with everything the server wrote back. */
function rawHttp(base: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => sock.write(bytes));
    let out = "";
    sock.on("data", (d) => (out += d.toString("utf8")));
    sock.on("end", () => resolve(out));
    sock.on("error", reject);
  });
}
