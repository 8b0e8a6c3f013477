// Fails fast with one clear line when the test suite cannot start its own Redis.
import { execFileSync } from "node:child_process";

const bin = process.env.REDIS_SERVER_BIN || "redis-server";
try {
  const out = execFileSync(bin, ["--version"], { encoding: "utf8" });
  const m = /v=(\d+)\.(\d+)/.exec(out);
  if (m && (Number(m[1]) < 6 || (Number(m[1]) === 6 && Number(m[2]) < 2))) {
    console.error(`redis-server ${m[1]}.${m[2]} is too old: the tests need >= 6.2 (apt-get install redis-server, or set REDIS_SERVER_BIN)`);
    process.exit(1);
  }
} catch {
  console.error(`redis-server not found: install it (apt-get install redis-server) or set REDIS_SERVER_BIN to its path`);
  process.exit(1);
}
