import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, configFromOptions, loadConfig, parseDuration, parseRateLimit } from "../../server/config";

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
    [{ REDIS_CLUSTER_NODES: "redis://127.0.0.1:7000" }, "JWT_SECRET"],
    [{ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: "127.0.0.1:7000" }, "REDIS_CLUSTER_NODES"],
    [{ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: "http://127.0.0.1:7000" }, "REDIS_CLUSTER_NODES"],
    [{ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: " , " }, "REDIS_CLUSTER_NODES"],
    [{ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: "redis://127.0.0.1:7000/2" }, "REDIS_CLUSTER_NODES"],
    [{ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: "redis://a:pw@127.0.0.1:7000,redis://127.0.0.1:7001" }, "REDIS_CLUSTER_NODES"],
    [{ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: "rediss://127.0.0.1:7000,redis://127.0.0.1:7001" }, "REDIS_CLUSTER_NODES"],
  ])("refuses %o naming %s", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it("REDIS_CLUSTER_NODES: seed URLs as a list, credentials and TLS in them", () => {
    const c = loadConfig({ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: " rediss://app:s3cret@10.0.0.1:7000, rediss://app:s3cret@10.0.0.2:7000/ ," });
    expect(c.redisClusterNodes).toEqual(["rediss://app:s3cret@10.0.0.1:7000", "rediss://app:s3cret@10.0.0.2:7000/"]);
    expect(c.redisUrl).toBeUndefined();
    expect(loadConfig({}).redisClusterNodes).toBeUndefined();
  });

  it("REDIS_URL and REDIS_CLUSTER_NODES together: one line naming both", () => {
    const env = { JWT_SECRET: "k".repeat(32), REDIS_URL: "redis://127.0.0.1:6390", REDIS_CLUSTER_NODES: "redis://127.0.0.1:7000" };
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow("invalid configuration: set REDIS_URL (one Redis primary) or REDIS_CLUSTER_NODES (a Redis Cluster), not both");
  });

  it("a bad REDIS_CLUSTER_NODES never echoes its credentials", () => {
    let message = "";
    try {
      loadConfig({ JWT_SECRET: "k".repeat(32), REDIS_CLUSTER_NODES: "redis://app:s3cret@10.0.0.1:7000,redis://10.0.0.2:7000" });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("REDIS_CLUSTER_NODES");
    expect(message).not.toContain("s3cret");
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

  it("REDIS_URL and REDIS_CLUSTER_NODES both set: the node exits 1 with one clear line, before connecting", async () => {
    const run = promisify(execFile);
    // Unused ports: a node that tried to connect would hang or log connection errors, not exit 1 at once.
    const env = { ...process.env, JWT_SECRET: "k".repeat(32), REDIS_URL: "redis://127.0.0.1:1", REDIS_CLUSTER_NODES: "redis://127.0.0.1:2" };
    const err = await run(process.execPath, ["dist/server/main.js"], { env, timeout: 10_000 }).catch((e: unknown) => e);
    const e = err as { code: number; stderr: string; stdout: string };
    expect(e.code).toBe(1);
    expect(e.stdout).toBe("");
    expect(e.stderr.trim().split("\n")).toEqual(["invalid configuration: set REDIS_URL (one Redis primary) or REDIS_CLUSTER_NODES (a Redis Cluster), not both"]);
  });

  it("CORS_ORIGINS: * alone means any origin; mixed with origins it is refused at start", () => {
    expect(loadConfig({ CORS_ORIGINS: "*" }).corsOrigins).toEqual(["*"]);
    expect(loadConfig({ CORS_ORIGINS: "https://a.example, https://b.example" }).corsOrigins).toEqual(["https://a.example", "https://b.example"]);
    expect(() => loadConfig({ CORS_ORIGINS: "https://a.example,*" })).toThrow(/CORS_ORIGINS: \* allows every origin and must be given alone/);
  });
});

describe("createGatehouse options", () => {
  it("go through the environment's schema: same defaults, same parsing", () => {
    const c = configFromOptions({
      jwtSecret: "k".repeat(32),
      jwtSecretPrevious: ["o".repeat(32)],
      accessTokenTtl: "5m",
      refreshReuseGrace: 2500,
      rateLimitLoginUser: "3/1m",
      rateLimitLoginIp: { points: 7, durationSec: 60 },
      rateLimitHandshakeIp: { points: 0, durationSec: 1 },
      corsOrigins: "*",
      trustProxy: 1,
      adminUsername: "boss",
      adminPassword: "boss-password-1",
    });
    expect(c.accessTokenTtlMs).toBe(300_000);
    expect(c.refreshReuseGraceMs).toBe(2500);
    expect(c.refreshTokenTtlMs).toBe(30 * 86_400_000);
    expect(c.rateLimitLoginUser).toEqual({ points: 3, durationSec: 60 });
    expect(c.rateLimitLoginIp).toEqual({ points: 7, durationSec: 60 });
    expect(c.rateLimitHandshakeIp.points).toBe(0);
    expect(c.jwtSecretPrevious.map(String)).toEqual(["o".repeat(32)]);
    expect(c.corsOrigins).toEqual(["*"]);
    expect(c.trustProxy).toBe(1);
    expect(c.adminUsername).toBe("boss");
    expect(configFromOptions({ jwtSecret: "k".repeat(32), redisClusterNodes: ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"] }).redisClusterNodes).toEqual([
      "redis://10.0.0.1:7000",
      "redis://10.0.0.2:7000",
    ]);
    // The host application listens: the default node name is the process, not a port.
    expect(c.nodeId).toMatch(new RegExp(`:${process.pid}$`));
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ jwtSecret: "short" }, /^invalid option: jwtSecret/],
    [{ redisUrl: "redis://127.0.0.1:1" }, /jwtSecret is required .* when redisUrl is set/],
    [{ redisClusterNodes: ["redis://127.0.0.1:1"] }, /jwtSecret is required .* when redisClusterNodes is set/],
    [{ jwtSecret: "k".repeat(32), redisUrl: "redis://127.0.0.1:1", redisClusterNodes: ["redis://127.0.0.1:2"] }, /^invalid option: set redisUrl .* or redisClusterNodes .*, not both$/],
    [{ jwtSecret: "k".repeat(32), redisClusterNodes: ["127.0.0.1:2"] }, /^invalid option: redisClusterNodes must be comma-separated redis/],
    [{ jwtSecretPrevious: ["o".repeat(32)] }, /^invalid option: jwtSecretPrevious needs jwtSecret/],
    [{ accessTokenTtl: "forever" }, /^invalid option: accessTokenTtl must be a duration/],
    [{ rateLimitLoginIp: "many" }, /^invalid option: rateLimitLoginIp must be/],
    [{ rateLimitLoginIp: { points: 1.5, durationSec: 60 } }, /^invalid option: rateLimitLoginIp has the wrong type/],
    [{ adminUsername: "boss" }, /adminUsername and adminPassword must be set together/],
    [{ corsOrigins: ["https://a.example", "*"] }, /^invalid option: corsOrigins: \* allows every origin/],
    [{ trustProxy: "garbage!!" }, /^invalid option: trustProxy/],
    [{ jwtSecret: 42 }, /^invalid option: jwtSecret/],
    [{ jwtsecret: "k".repeat(32) }, /^invalid option: jwtsecret is not a Gatehouse option/],
  ])("refuse %o with one line naming the option", (options, message) => {
    expect(() => configFromOptions(options as never)).toThrow(ConfigError);
    expect(() => configFromOptions(options as never)).toThrow(message);
  });
});
