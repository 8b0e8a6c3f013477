import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseDuration, parseRateLimit } from "../../server/config";

describe("config", () => {
  it("defaults describe an embedded dev node", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, host: "127.0.0.1", redisUrl: undefined, jwtIssuer: "gatehouse", jwtAudience: "gatehouse-game" });
    expect(c.accessTokenTtlMs).toBe(15 * 60_000);
    expect(c.refreshTokenTtlMs).toBe(30 * 86_400_000);
    expect(c.revocationMaxStalenessMs).toBe(5000);
    expect(c.jwtSecret.length).toBe(32);
    expect(c.rateLimitLoginUser).toEqual({ points: 10, durationSec: 900 });
    expect(c.rateLimitLoginUserNewAddress).toEqual({ points: 100, durationSec: 3600 });
    expect(c.rateLimitRefreshIp).toEqual({ points: 300, durationSec: 60 });
    expect(c.rateLimitSessionsUser).toEqual({ points: 60, durationSec: 60 });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("parses durations and rate limits", () => {
    expect(parseDuration("900")).toBe(900_000);
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("2s")).toBe(2000);
    expect(parseDuration("soon")).toBeNaN();
    expect(parseRateLimit("10/15m")).toEqual({ points: 10, durationSec: 900 });
    expect(parseRateLimit("600/1m")).toEqual({ points: 600, durationSec: 60 });
    expect(parseRateLimit("5/s")).toEqual({ points: 5, durationSec: 1 });
    expect(parseRateLimit("0")).toEqual({ points: 0, durationSec: 1 });
    expect(parseRateLimit("lots")).toBeUndefined();
  });

  it.each([
    [{ PORT: "abc" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ REDIS_URL: "localhost:1" }, "REDIS_URL"],
    [{ REDIS_URL: "redis://127.0.0.1:1" }, "JWT_SECRET"],
    [{ JWT_SECRET: "short" }, "JWT_SECRET"],
    [{ ACCESS_TOKEN_TTL: "forever" }, "ACCESS_TOKEN_TTL"],
    [{ RATE_LIMIT_LOGIN_IP: "many" }, "RATE_LIMIT_LOGIN_IP"],
    [{ RATE_LIMIT_REFRESH_IP: "1/forever" }, "RATE_LIMIT_REFRESH_IP"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ ADMIN_USERNAME: "boss" }, "ADMIN_PASSWORD"],
    [{ REVOCATION_MAX_STALENESS: "-1" }, "REVOCATION_MAX_STALENESS"],
    [{ TRUST_PROXY: "garbage!!" }, "TRUST_PROXY"],
    [{ JWT_SECRET: "k".repeat(32), JWT_SECRET_PREVIOUS: `${"o".repeat(32)},short` }, "JWT_SECRET_PREVIOUS"],
    [{ JWT_SECRET_PREVIOUS: "o".repeat(32) }, "JWT_SECRET_PREVIOUS"],
  ])("refuses %o naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("reads earlier signing keys as a list", () => {
    expect(loadConfig({}).jwtSecretPrevious).toEqual([]);
    const c = loadConfig({ JWT_SECRET: "k".repeat(32), JWT_SECRET_PREVIOUS: `${"a".repeat(32)}, ${"b".repeat(40)}` });
    expect(c.jwtSecretPrevious.map((b) => b.toString())).toEqual(["a".repeat(32), "b".repeat(40)]);
  });

  it("accepts the trust proxy forms express knows", () => {
    expect(loadConfig({ TRUST_PROXY: "true" }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: "2" }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: "loopback, 10.0.0.0/8" }).trustProxy).toBe("loopback, 10.0.0.0/8");
  });

  it("a bad value makes the node exit 1 with one clear line", async () => {
    const run = promisify(execFile);
    const err = await run(process.execPath, ["dist/server/main.js"], { env: { ...process.env, PORT: "not-a-port" } }).catch((e: unknown) => e);
    const e = err as { code: number; stderr: string; stdout: string };
    expect(e.code).toBe(1);
    const lines = e.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("PORT");
  });
});
