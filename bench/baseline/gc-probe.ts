/**
 * Bench-only preload for the cluster nodes (NODE_OPTIONS="--expose-gc
 * --import=dist/bench/gc-probe.js"): on SIGUSR2 the node runs a full garbage
 * collection, so the memory figure compares live heap, not live heap plus
 * whatever garbage the handshakes left. Does nothing else; the server code is
 * untouched.
 */
const runGc = (globalThis as { gc?: () => void }).gc;
if (typeof runGc === "function") {
  process.on("SIGUSR2", () => runGc());
  process.stdout.write("bench gc probe ready\n");
}
