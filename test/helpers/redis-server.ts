/** Tests start their own redis-server on free ports: the launcher shared with `npm run cluster` and the benchmarks. */
export { startRedis, freePort, type RedisProcess } from "../../scripts/lib/redis-server";
export { startRedisCluster, type RedisClusterProcess, type ClusterShard } from "../../scripts/lib/redis-cluster";
