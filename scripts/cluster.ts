/**
 * `npm run cluster -- --nodes 3 [--port 3000] [--redis-cluster] [--verbose]`: its own
 * redis-server on a free port (or, with --redis-cluster, its own Redis Cluster of 3 primaries +
 * 3 replicas, in sync before the nodes start) plus N nodes on consecutive ports sharing one
 * generated JWT_SECRET. Prints the URLs and the admin credentials; Ctrl-C stops all.
 */
import { NO_LIMITS } from "./lib/no-limits";
import { exitOnHelp, parseCli } from "./lib/cli";
import { startLocalCluster } from "./lib/local-cluster";

const USAGE = `npm run cluster -- [options]
  --nodes N     how many nodes (1-32, default 3), on consecutive ports
  --port P      the first node's port (default 3000)
  --redis-cluster  on its own local Redis Cluster (3 primaries + 3 replicas) instead of one redis-server
  --no-limits   switch the per-IP and per-user rate limits off (for npm run bots)
  --verbose     echo every node's log lines`;

exitOnHelp(USAGE);
const values = parseCli(
  {
    nodes: { type: "string", default: "3" },
    port: { type: "string", default: "3000" },
    verbose: { type: "boolean", default: false },
    "no-limits": { type: "boolean", default: false },
    "redis-cluster": { type: "boolean", default: false },
  },
  USAGE,
);
const count = Number(values.nodes);
const basePort = Number(values.port);
if (!Number.isInteger(count) || count < 1 || count > 32) {
  console.error("--nodes must be an integer from 1 to 32");
  process.exit(1);
}
if (!Number.isInteger(basePort) || basePort < 1 || basePort + count > 65535) {
  console.error("--port must be a valid port");
  process.exit(1);
}

const noLimits: Record<string, string> = values["no-limits"]
  ? { ...NO_LIMITS }
  : {};
const onRedisCluster = values["redis-cluster"];
if (onRedisCluster) console.log("starting a Redis Cluster (3 primaries + 3 replicas) and waiting until the replicas are in sync...");
const cluster = await startLocalCluster({ nodes: count, basePort, echo: values.verbose, env: noLimits, redisCluster: onRedisCluster }).catch((err: unknown) => {
  // Everything started so far is stopped by now: say why in one line.
  console.error(`could not start the cluster: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

const redisText =
  cluster.topology === "single"
    ? `redis at ${cluster.redis.url}`
    : `Redis Cluster of ${cluster.redisCluster.servers.length} servers (REDIS_CLUSTER_NODES=${cluster.redisCluster.nodesEnv})`;
console.log(`\nGatehouse cluster: ${count} node(s), ${redisText}\n`);
for (const n of cluster.nodes) console.log(`  ${n.nodeId.padEnd(12)} ${n.url}   arena: ${n.url}/   tic-tac-toe: ${n.url}/tictactoe   admin: ${n.url}/admin`);
console.log(`\n  admin login: ${cluster.admin.username} / ${cluster.admin.password}`);
console.log(`  bots:        npm run bots -- --url ${cluster.nodes[0]!.url} --count 50   (start with --no-limits for many bots)`);
console.log(`\nCtrl-C stops everything.\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log(`\nstopping nodes and ${onRedisCluster ? "the Redis Cluster" : "redis"}...`);
  await cluster.stop();
  console.log("stopped.");
  process.exit(0);
};
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
// Tell when a node dies on its own.
for (const n of cluster.nodes) {
  n.proc.once("exit", (code, signal) => {
    if (!stopping) console.log(`${n.nodeId} exited (code ${code}, signal ${signal})`);
  });
}
