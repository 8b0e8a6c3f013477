/**
 * One lightweight feed subscriber for `npm run bench:feed`: what a node does per revocation on
 * the feed (receive, parse, validate, confirm), without sockets or HTTP. Driven over IPC by
 * bench/feed-fanout.ts: {cpu} -> its CPU time so far; {stop} -> closes and exits.
 */
import { RedisStore } from "../../server/store/redis";
import { RedisFeed } from "../../server/store/redis-feed";

const nodeId = process.env.NODE_ID ?? `sub-${process.pid}`;
const store = process.env.REDIS_CLUSTER_NODES
  ? await RedisStore.connect({ clusterNodes: process.env.REDIS_CLUSTER_NODES.split(",") })
  : await RedisStore.connect({ url: process.env.REDIS_URL! });
const feed = RedisFeed.for(store);
let received = 0;
const sub = feed.subscribe(
  (e) => {
    received++;
    feed.acknowledge(e, nodeId);
  },
  { onLost: () => undefined, onResumed: () => undefined },
  { nodeId },
);
await sub.ready;
process.on("message", async (m: { type: string }) => {
  if (m.type === "cpu") {
    const u = process.cpuUsage();
    process.send!({ type: "cpu", cpuUs: u.user + u.system, received });
  } else if (m.type === "stop") {
    await sub.close();
    await feed.close();
    await store.close();
    process.exit(0);
  }
});
process.send!({ type: "ready" });
