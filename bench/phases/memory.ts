/**
 * 5. Memory per idle authenticated socket: N sockets held by Gatehouse node 0,
 * then the same N by the plain socket.io server, each measured after a full GC
 * (bench gc probe) against its own empty state after the same warm-up.
 */
import type { ChildProcess } from "node:child_process";
import { performance } from "node:perf_hooks";
import { call, guest, metric, scrape } from "../lib/api";
import { check, connectedOn, log, median, ms, params, waitFor } from "../lib/context";
import { closeAll, openMany, type SocketSpec } from "../lib/sockets";
import { mapLimit, round, sleep } from "../lib/stats";

export interface MemorySide {
  sockets: number;
  afterFullGc: boolean;
  connectMs: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapUsedBeforeMiB: number;
  heapUsedAfterMiB: number;
  rssPerSocketKB: number;
  heapPerSocketKB: number;
}

export interface MemoryResult {
  sockets: number;
  gatehouse: MemorySide;
  plain: MemorySide;
  /** Gatehouse per socket over plain per socket */
  heapRatioToPlain: number;
  rssRatioToPlain: number;
}

interface Target {
  name: string;
  url: string;
  proc: ChildProcess;
  gcProbe: boolean;
  tokens: string[];
  connected(): Promise<number>;
  memory(): Promise<{ rss: number; heap: number }>;
}

async function measure(t: Target): Promise<MemorySide> {
  const p = params.memory;
  check(`memory: gc probe loaded in ${t.name} (heap measured after a full GC)`, t.gcProbe);
  const fullGc = async () => {
    if (!t.gcProbe) return;
    t.proc.kill("SIGUSR2");
    await sleep(300);
  };
  log(`memory: warming up ${t.name} with ${p.warmupSockets} connect/disconnects`);
  const warm = await openMany(Array.from({ length: p.warmupSockets }, (_, i) => ({ url: t.url, token: t.tokens[i % t.tokens.length]!, node: 0 })), params.connectConcurrency);
  closeAll(warm);
  await waitFor(`warm-up sockets gone on ${t.name}`, async () => (await t.connected()) === 0, 15_000);
  await sleep(1000);
  const sample = async () => {
    const rss: number[] = [];
    const heap: number[] = [];
    for (let i = 0; i < p.samples; i++) {
      if (i > 0) await sleep(500);
      await fullGc();
      const m = await t.memory();
      rss.push(m.rss);
      heap.push(m.heap);
    }
    return { rss: median(rss), heap: median(heap) };
  };
  const before = await sample();
  log(`memory: connecting ${p.sockets} idle sockets to ${t.name}`);
  const specs: SocketSpec[] = Array.from({ length: p.sockets }, (_, i) => ({ url: t.url, token: t.tokens[i % t.tokens.length]!, node: 0 }));
  const t0 = performance.now();
  const sockets = await openMany(specs, params.connectConcurrency);
  const connectMs = performance.now() - t0;
  await waitFor(`${p.sockets} sockets on ${t.name}`, async () => (await t.connected()) === p.sockets, 30_000);
  await sleep(p.settleMs);
  const after = await sample();
  const count = await t.connected();
  check(`memory: every idle socket still connected on ${t.name}`, count === p.sockets, `${count}/${p.sockets}`);
  closeAll(sockets);
  await waitFor(`memory sockets gone on ${t.name}`, async () => (await t.connected()) === 0, 30_000);
  const kb = (bytes: number) => bytes / 1024;
  return {
    sockets: p.sockets,
    afterFullGc: t.gcProbe,
    connectMs: ms(connectMs),
    rssBeforeMiB: round(before.rss / 2 ** 20, 1),
    rssAfterMiB: round(after.rss / 2 ** 20, 1),
    heapUsedBeforeMiB: round(before.heap / 2 ** 20, 1),
    heapUsedAfterMiB: round(after.heap / 2 ** 20, 1),
    rssPerSocketKB: round(kb(after.rss - before.rss) / p.sockets, 2),
    heapPerSocketKB: round(kb(after.heap - before.heap) / p.sockets, 2),
  };
}

export async function benchMemory(
  node: { url: string; proc: ChildProcess; output: string[] },
  plain: { url: string; proc: ChildProcess; output: string[] },
): Promise<MemoryResult> {
  const p = params.memory;
  const tokens = (await mapLimit(Array.from({ length: p.users }), 5, () => guest(node.url))).map((t) => t.accessToken);
  const probeReady = (output: string[]) => output.some((l) => l.includes("bench gc probe ready"));
  const gatehouse = await measure({
    name: "Gatehouse node 0",
    url: node.url,
    proc: node.proc,
    gcProbe: probeReady(node.output),
    tokens,
    connected: () => connectedOn(node.url),
    memory: async () => {
      const s = await scrape(node.url);
      return { rss: metric(s, "process_resident_memory_bytes"), heap: metric(s, "nodejs_heap_size_used_bytes") };
    },
  });
  const plainMemory = async () => (await call<{ sockets: number; rss: number; heapUsed: number }>(plain.url, "GET", "/bench/memory")).body;
  const plainSide = await measure({
    name: "plain socket.io",
    url: plain.url,
    proc: plain.proc,
    gcProbe: probeReady(plain.output),
    tokens: [""],
    connected: async () => (await plainMemory()).sockets,
    memory: async () => {
      const m = await plainMemory();
      return { rss: m.rss, heap: m.heapUsed };
    },
  });
  return {
    sockets: p.sockets,
    gatehouse,
    plain: plainSide,
    heapRatioToPlain: round(gatehouse.heapPerSocketKB / plainSide.heapPerSocketKB, 3),
    rssRatioToPlain: round(gatehouse.rssPerSocketKB / plainSide.rssPerSocketKB, 3),
  };
}
