/** The RESP proxy the feed-only fault uses: commands pass, subscriptions can be refused in order, subscribers cut. */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RespCommandReader, startRespProxy, type RespProxy } from "../../scripts/lib/resp-proxy";
import { startRedis, type RedisProcess } from "../helpers/redis-server";
import { waitFor } from "../helpers/wait";

describe("RESP proxy", () => {
  let redis: RedisProcess;
  let proxy: RespProxy;
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(proxy.url, { maxRetriesPerRequest: 1 });
    c.on("error", () => undefined);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    redis = await startRedis();
    proxy = await startRespProxy({ port: redis.port });
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await proxy?.close();
    await redis?.stop();
  });

  it("splits commands however the bytes arrive", () => {
    const reader = new RespCommandReader();
    const bytes = Buffer.from("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n");
    const names: string[] = [];
    for (let i = 0; i < bytes.length; i += 5) names.push(...reader.push(bytes.subarray(i, i + 5)).map((c) => c.name));
    expect(names).toEqual(["get", "subscribe"]);
  });

  it("refuses SUBSCRIBE with an error in pipeline order while other commands pass; cut subscribers resubscribe once allowed", async () => {
    const cmd = client();
    const sub = client();
    await cmd.set("k", "v");
    proxy.refuseSubscribe(true);
    const [, subResult, get] = await Promise.allSettled([cmd.ping(), sub.subscribe("ch"), cmd.get("k")]);
    expect(subResult.status).toBe("rejected");
    expect(String((subResult as PromiseRejectedResult).reason)).toMatch(/ERR/);
    expect(get).toEqual({ status: "fulfilled", value: "v" });
    expect(proxy.refused).toBeGreaterThan(0);

    proxy.refuseSubscribe(false);
    const listener = client();
    const got: string[] = [];
    listener.on("message", (_ch, m) => got.push(m));
    await listener.subscribe("ch");
    expect(proxy.cutSubscribers()).toBeGreaterThan(0);
    // ioredis reconnects and subscribes again through the proxy.
    await waitFor(async () => (await cmd.publish("ch", "hello")) > 0 && got.includes("hello"), { timeoutMs: 5000, intervalMs: 100, message: "resubscribed" });
  });
});
