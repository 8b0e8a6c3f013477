/**
 * The soak: N child-process nodes on their own redis-server, a population of
 * players (guests, and registered users with two devices on two nodes) moving
 * and chatting in rooms and refreshing (HTTP + in-band `auth:refresh`), and a
 * steady stream of revocations of every kind. For each revocation it records
 * the connections it covers, waits for each to get `session:revoked` with the
 * expected reason followed by a server disconnect, and then tries the covered
 * tokens on every node. Faults can be injected in the middle of the run.
 *
 * `runSoak()` is the core that `npm run soak` and test/soak/ call.
 */
import { NO_LIMITS } from "./no-limits";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Redis } from "ioredis";
import { io } from "socket.io-client";
import type { TokenPair } from "../../shared/claims";
import { startNodeProcess, type NodeProcess } from "./node-process";
import { freePort, startRedis, type RedisProcess } from "./redis-server";
import { startRespProxy, type RespProxy } from "./resp-proxy";
import { SoakBot, httpJson, type Incarnation, type SoakUser } from "./soak-bot";

export const FAULTS = ["pubsub-kill", "node-kill", "node-stop", "redis-restart", "subscribe-refused"] as const;
export type Fault = (typeof FAULTS)[number];

export const KINDS = [
  "logout",
  "logout_all",
  "password_change",
  "session_delete",
  "kick",
  "ban",
  "admin_session_revoke",
  "refresh_reuse",
  "revoke_all",
] as const;
export type Kind = (typeof KINDS)[number];

/** The session:revoked reason each kind must produce. */
const REASON: Record<Kind, string> = {
  logout: "logout",
  logout_all: "logout_all",
  password_change: "password_changed",
  session_delete: "session_revoked",
  kick: "kicked",
  ban: "banned",
  admin_session_revoke: "session_revoked",
  refresh_reuse: "refresh_reused",
  revoke_all: "revoked_all",
};

/** Relative frequency in the steady stream (password changes cost two scrypt hashes, so fewer). revoke_all only by flag, at the end. */
const WEIGHT: Partial<Record<Kind, number>> = {
  logout: 3,
  logout_all: 2,
  password_change: 1,
  session_delete: 2,
  kick: 3,
  ban: 2,
  admin_session_revoke: 3,
  refresh_reuse: 3,
};

export interface SoakOptions {
  /** players connected at once (default 2000) */
  bots?: number;
  /** revocations per second (default 20) */
  rate?: number;
  /** seconds of steady state (default 120) */
  durationSec?: number;
  /** nodes (default 3) */
  nodes?: number;
  faults?: Fault[];
  /** access-token lifetime in seconds (default 30): marks expire within the run */
  accessTtlSec?: number;
  /** share of players in rooms, moving and chatting (default 0.5; the rest sit connected) */
  inRoomShare?: number;
  /** share of players that are registered users with two devices (default 0.1; the rest are guests) */
  registeredShare?: number;
  /** moves per second of a player in a room (default 1) */
  movesPerSec?: number;
  /** mean seconds between a player's chat lines (default 30) */
  chatEverySec?: number;
  /** end with one revoke-all covering everyone (default false) */
  revokeAll?: boolean;
  /** wait for the access lifetime after the last revocation before counting Redis keys (default true) */
  waitForTtl?: boolean;
  /** how long a covered connection may take to drop before it counts as missed (default 10 000 ms) */
  dropDeadlineMs?: number;
  /** called every `progressEveryMs` (default 5000) */
  onProgress?(p: SoakProgress): void;
  progressEveryMs?: number;
  /** one line per phase / fault */
  log?(line: string): void;
  /** echo the nodes' logs on stderr */
  echo?: boolean;
}

export interface SoakProgress {
  elapsedSec: number;
  connected: number;
  issued: number;
  failed: number;
  droppedRight: number;
  missed: number;
  wronglyDropped: number;
  admitted: number;
  p99Ms: number;
  msgsPerSec: number;
  lagP99Ms: number;
}

export interface Sample {
  kind?: Kind;
  node: string;
  expected?: string;
  got?: string;
  endReason?: string;
  detail?: string;
}

export interface SoakResult {
  ok: boolean;
  startedAt: string;
  settings: Required<Omit<SoakOptions, "onProgress" | "log" | "echo" | "progressEveryMs">>;
  machine: { cores: number; node: string };
  revocations: { issued: number; failed: number; byKind: Record<string, number>; failedByKind: Record<string, number>; unbans: number };
  /** connections covered by a revocation that answered 2xx */
  covered: number;
  droppedRight: number;
  missed: number;
  wronglyDropped: number;
  admitted: number;
  /** admission attempts made with revoked tokens (HTTP GET /me, handshakes, refreshes) */
  admissionChecks: number;
  /** covered connections on a node that a fault killed (transport close): not judged */
  lostToFault: number;
  /** connections dropped by a revocation whose call failed (it may still have been applied) */
  droppedByFailedCall: number;
  /**
   * connections of a targeted bot that were not yet up when the revocation was sent (a reconnect
   * in flight, as faults cause) and were then dropped with that revocation's reason: right, not judged
   */
  droppedLateConnection: number;
  /** uncovered connections dropped with token_expired after the token they held expired: the bot's refresh came late (a starved harness) */
  expiredUnrenewed: number;
  /** covered connections whose token expired (token_expired) before the revocation's drop reached them: not judged */
  expiredBeforeVerdict: number;
  /** uncovered connections dropped with refresh_reused after their own refresh got no answer (5xx / timeout) and was retried */
  reuseAfterLostRefresh: number;
  /** transport closes on a faulted node (the client reconnected by itself) */
  transportClosesInFaults: number;
  latencyMs: { count: number; p50: number; p99: number; max: number };
  traffic: { connects: number; peakConnected: number; httpRefreshes: number; inBandRefreshes: number; inBandRefused: number; chats: number; messages: number; errors: Record<string, number> };
  nodes: { nodeId: string; heapStartBytes: number | null; heapEndBytes: number | null; restarted: boolean }[];
  redis: { keysStart: number; keysEnd: number; marksStart: number; marksEnd: number; accessTtlSec: number; waitedForTtlSec: number };
  faults: { fault: Fault; atSec: number; detail: string }[];
  harness: { eventLoopP99Ms: number; eventLoopMaxMs: number };
  samples: { missed: Sample[]; wronglyDropped: Sample[]; admitted: Sample[] };
  durationSec: number;
}

/** Tokens to try after a revocation, and why they are covered when it is not obvious. */
interface Tokens {
  pair: TokenPair;
  why?: string;
}

interface Revocation {
  kind: Kind;
  sentAt: number;
  ackAt: number;
  covered: Incarnation[];
}

const ADMIN = { username: "soakadmin", password: randomBytes(12).toString("base64url") };
const SAMPLE_MAX = 20;
/** tolerance the server allows on exp, plus a margin (marks live for the access lifetime + this). */
const CLOCK_TOLERANCE_SEC = 5;

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const o = {
    bots: options.bots ?? 2000,
    rate: options.rate ?? 20,
    durationSec: options.durationSec ?? 120,
    nodes: options.nodes ?? 3,
    faults: options.faults ?? [],
    accessTtlSec: options.accessTtlSec ?? 30,
    inRoomShare: options.inRoomShare ?? 0.5,
    registeredShare: options.registeredShare ?? 0.1,
    movesPerSec: options.movesPerSec ?? 1,
    chatEverySec: options.chatEverySec ?? 30,
    revokeAll: options.revokeAll ?? false,
    waitForTtl: options.waitForTtl ?? true,
    dropDeadlineMs: options.dropDeadlineMs ?? 10_000,
  };
  const log = options.log ?? (() => undefined);
  const t0 = Date.now();
  const sec = () => Math.round((Date.now() - t0) / 100) / 10;

  // ---------------------------------------------------------------- cluster
  const aofDir = mkdtempSync(path.join(tmpdir(), "gatehouse-soak-"));
  const redisArgs = o.faults.includes("redis-restart") ? ["--appendonly", "yes", "--appendfsync", "always", "--dir", aofDir] : [];
  let redis: RedisProcess | undefined;
  let proxy: RespProxy | undefined;
  const nodes: NodeProcess[] = [];
  const restarted = new Set<number>();
  const bots = new Set<SoakBot>();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  let progressTimer: NodeJS.Timeout | undefined;
  let stopping = false;

  try {
    redis = await startRedis({ args: redisArgs });
    if (o.faults.includes("subscribe-refused")) proxy = await startRespProxy({ port: redis.port });
    const env: Record<string, string> = {
      REDIS_URL: proxy?.url ?? redis.url,
      JWT_SECRET: randomBytes(32).toString("base64url"),
      ADMIN_USERNAME: ADMIN.username,
      ADMIN_PASSWORD: ADMIN.password,
      ACCESS_TOKEN_TTL: `${o.accessTtlSec}s`,
      // Immediate reuse detection: the soak presents a rotated token on purpose.
      REFRESH_REUSE_GRACE: "0",
      ...NO_LIMITS,
      LOG_LEVEL: "warn",
    };
    const startNode = async (i: number, port?: number) => {
      const p = port ?? (await freePort());
      return startNodeProcess({ port: p, env, nodeId: `soak-${i + 1}`, echo: options.echo ?? false });
    };
    for (let i = 0; i < o.nodes; i++) nodes.push(await startNode(i));
    const urls = () => nodes.map((n) => n.url);
    log(`cluster: ${o.nodes} nodes (${urls().join(", ")}), redis ${redis.url}${proxy ? ` behind proxy ${proxy.url}` : ""}${redisArgs.length ? " (AOF on)" : ""}`);

    // Nodes out of service (killed / stopped) until the time given: not asked, their transport closes excused.
    const downUntil = new Map<number, number>();
    const nodeDown = (i: number, at = Date.now()) => (downUntil.get(i) ?? 0) > at;
    const upNodes = () => nodes.map((_, i) => i).filter((i) => !nodeDown(i));
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

    // ---------------------------------------------------------------- bookkeeping
    const r: SoakResult = {
      ok: false,
      startedAt: new Date(t0).toISOString(),
      settings: o,
      machine: { cores: (await import("node:os")).cpus().length, node: process.version },
      revocations: { issued: 0, failed: 0, byKind: {}, failedByKind: {}, unbans: 0 },
      covered: 0,
      droppedRight: 0,
      missed: 0,
      wronglyDropped: 0,
      admitted: 0,
      admissionChecks: 0,
      lostToFault: 0,
      droppedByFailedCall: 0,
      droppedLateConnection: 0,
      expiredUnrenewed: 0,
      expiredBeforeVerdict: 0,
      reuseAfterLostRefresh: 0,
      transportClosesInFaults: 0,
      latencyMs: { count: 0, p50: 0, p99: 0, max: 0 },
      traffic: { connects: 0, peakConnected: 0, httpRefreshes: 0, inBandRefreshes: 0, inBandRefused: 0, chats: 0, messages: 0, errors: {} },
      nodes: [],
      redis: { keysStart: 0, keysEnd: 0, marksStart: 0, marksEnd: 0, accessTtlSec: o.accessTtlSec, waitedForTtlSec: 0 },
      faults: [],
      harness: { eventLoopP99Ms: 0, eventLoopMaxMs: 0 },
      samples: { missed: [], wronglyDropped: [], admitted: [] },
      durationSec: 0,
    };
    const latencies: number[] = [];
    const sample = (list: Sample[], s: Sample) => void (list.length < SAMPLE_MAX && list.push(s));
    /** connection -> the revocation judging it (set before the call is sent: a drop may beat the 2xx) */
    const pending = new Map<Incarnation, { kind: Kind; failed?: boolean }>();
    const lateTokens = new Map<SoakBot, TokenPair[]>();
    let connected = 0;

    const hooks = {
      onConnect: (inc: Incarnation) => {
        r.traffic.connects++;
        connected++;
        r.traffic.peakConnected = Math.max(r.traffic.peakConnected, connected);
        // A covered session connecting again (its node restarted) after the 2xx: admitted.
        if ((coveredAt.get(inc.bot) ?? Infinity) <= Date.now()) {
          r.admitted++;
          sample(r.samples.admitted, { node: nodes[inc.node]!.nodeId, detail: "covered session reconnected" });
        }
      },
      onEnd: (inc: Incarnation) => {
        connected--;
        classifyEnd(inc);
      },
      count: (what: "httpRefresh" | "inBand" | "inBandRefused" | "messages" | "chat", n = 1) => {
        if (what === "httpRefresh") r.traffic.httpRefreshes += n;
        else if (what === "inBand") r.traffic.inBandRefreshes += n;
        else if (what === "inBandRefused") r.traffic.inBandRefused += n;
        else if (what === "chat") r.traffic.chats += n;
        else r.traffic.messages += n;
      },
      error: (code: string) => void (r.traffic.errors[code] = (r.traffic.errors[code] ?? 0) + 1),
      lateRefresh: (bot: SoakBot, pair: TokenPair) => void lateTokens.set(bot, [...(lateTokens.get(bot) ?? []), pair]),
    };
    const judging = new Set<SoakBot>();
    /**
     * bot -> the revocations sent against it (reason, and when the call answered): a connection of
     * it that came up before that answer (a reconnect in flight) may meet one, rightly
     */
    const targetedFor = new Map<SoakBot, { reason: string; answeredAt: number }[]>();
    /** bot -> when the revocation covering it answered 2xx: a connection after that is an admission */
    const coveredAt = new Map<SoakBot, number>();
    /**
     * token_expired once the token the server held for it had expired: the bot did not renew in time
     * (its timers starved on a busy machine). The server was right; counted apart, not judged.
     */
    const unrenewed = (inc: Incarnation) => inc.revoked?.reason === "token_expired" && (inc.endedAt ?? 0) >= inc.tokenExp - 1000;
    /** A connection ended outside a verdict: excused (fault, failed call) or wrongly dropped. */
    function classifyEnd(inc: Incarnation): void {
      if (stopping || inc.bot.retired) return;
      const judged = pending.get(inc);
      if (judged && !judged.failed) return; // its verdict is being waited for
      const dropped = inc.revoked !== undefined || inc.endReason === "io server disconnect";
      if (judged?.failed && dropped) {
        r.droppedByFailedCall++;
        return;
      }
      if (unrenewed(inc)) {
        r.expiredUnrenewed++;
        return;
      }
      const reason = inc.revoked?.reason;
      if (targetedFor.get(inc.bot)?.some((t) => t.reason === reason && inc.connectedAt <= t.answeredAt)) {
        r.droppedLateConnection++;
        return;
      }
      if (inc.revoked?.reason === "refresh_reused" && inc.bot.lostRefresh) {
        // Its own refresh got no answer, and the retry presented the rotated token: reuse by the
        // contract unless REFRESH_REUSE_GRACE covers it (contract v2). Counted apart.
        r.reuseAfterLostRefresh++;
        return;
      }
      if (!dropped && nodeDown(inc.node, (inc.endedAt ?? Date.now()) - 1000)) {
        r.transportClosesInFaults++;
        return; // socket.io reconnects it by itself once the node is back
      }
      r.wronglyDropped++;
      sample(r.samples.wronglyDropped, { node: nodes[inc.node]!.nodeId, got: inc.revoked?.reason, endReason: inc.endReason });
    }

    // ---------------------------------------------------------------- HTTP
    async function http<T = any>(node: number, method: string, route: string, opts: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
      const res = await httpJson<T>(nodes[node]!.url + route, method, opts);
      if (res.error) hooks.error(`http:${res.error}`);
      return res;
    }

    let admin: { pair: TokenPair; at: number } | undefined;
    async function adminToken(): Promise<string> {
      if (!admin || Date.now() - admin.at > (o.accessTtlSec * 1000) / 2) {
        const res = await http<TokenPair>(pick(upNodes()), "POST", "/auth/login", { body: { username: ADMIN.username, password: ADMIN.password, device: "soak console" } });
        if (res.status !== 200) throw new Error(`admin login failed: ${res.status}`);
        admin = { pair: res.body, at: Date.now() };
      }
      return admin.pair.accessToken;
    }

    // ---------------------------------------------------------------- population
    let nextBot = 0;
    let roomCounter = 0;
    const users = new Set<SoakUser>();
    const plan = () => {
      const inRoom = Math.random() < o.inRoomShare;
      return { ...(inRoom ? { room: `soak-room-${roomCounter++ % Math.max(1, Math.round((o.bots * o.inRoomShare) / 20))}` } : {}), movesPerSec: o.movesPerSec, chatEverySec: o.chatEverySec };
    };
    async function addBot(user: SoakUser, pair: TokenPair, node: number, after = "ramp"): Promise<void> {
      const bot = new SoakBot(nextBot++, user, pair, node, nodes[node]!.url, hooks);
      user.bots.push(bot);
      bots.add(bot);
      try {
        await bot.connect(plan());
      } catch (err) {
        hooks.error(`handshake:${(err as Error).message} (${after})`);
        dropBot(bot);
      }
    }
    function dropBot(bot: SoakBot): void {
      bot.retire();
      bots.delete(bot);
      bot.user.bots = bot.user.bots.filter((b) => b !== bot);
    }
    async function addGuest(): Promise<void> {
      const node = pick(upNodes());
      const res = await http<TokenPair>(node, "POST", "/auth/guest", { body: { device: "soak bot" } });
      if (res.status !== 201) return hooks.error(`guest:${res.status}`);
      const user: SoakUser = { id: res.body.user.id, username: res.body.user.username, bots: [], busy: false };
      users.add(user);
      await addBot(user, res.body, node);
    }
    async function loginDevice(user: SoakUser, device: number, node: number, after = "ramp"): Promise<void> {
      const res = await http<TokenPair>(node, "POST", "/auth/login", { body: { username: user.username, password: user.password, device: `device ${device}` } });
      if (res.status !== 200) return hooks.error(`login:${res.status} (${after})`);
      await addBot(user, res.body, node, `login after ${after}`);
    }
    async function addRegistered(): Promise<void> {
      const username = `soak${randomBytes(6).toString("hex")}`;
      const password = randomBytes(9).toString("base64url");
      const first = Math.floor(Math.random() * nodes.length);
      const res = await http<TokenPair>(first, "POST", "/auth/register", { body: { username, password, device: "device 0" } });
      if (res.status !== 201) return hooks.error(`register:${res.status}`);
      const user: SoakUser = { id: res.body.user.id, username, password, bots: [], busy: false };
      users.add(user);
      // Two devices on two different nodes: user-wide revocations cross the cluster.
      await Promise.all([addBot(user, res.body, first), loginDevice(user, 1, (first + 1) % nodes.length)]);
    }
    async function ramp(count: number, registeredBots: number): Promise<void> {
      const jobs: (() => Promise<void>)[] = [];
      for (let i = 0; i < Math.floor(registeredBots / 2); i++) jobs.push(addRegistered);
      while (jobs.length < count - Math.floor(registeredBots / 2)) jobs.push(addGuest);
      let next = 0;
      const worker = async () => {
        while (next < jobs.length) await jobs[next++]!().catch((err) => hooks.error(`ramp:${(err as Error).message}`));
      };
      await Promise.all(Array.from({ length: 40 }, worker));
    }

    const metrics = async (node: number): Promise<number | null> => {
      const res = await httpJson<string>(`${nodes[node]!.url}/metrics`, "GET");
      const line = typeof res.body === "string" ? res.body.split("\n").find((l) => /^nodejs_heap_size_used_bytes[ {]/.test(l)) : undefined;
      return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : null;
    };
    const redisCounts = async (): Promise<{ keys: number; marks: number }> => {
      const c = new Redis(redis!.url, { maxRetriesPerRequest: 1, lazyConnect: true });
      c.on("error", () => undefined);
      try {
        await c.connect();
        const keys = await c.dbsize();
        let marks = 0;
        let cursor = "0";
        do {
          const [next, found] = await c.scan(cursor, "MATCH", "gh:m:*", "COUNT", 1000);
          cursor = next;
          marks += found.length;
        } while (cursor !== "0");
        return { keys, marks };
      } finally {
        c.disconnect();
      }
    };

    log(`ramp: ${o.bots} players (${Math.floor((o.bots * o.registeredShare) / 2) * 2} on registered users with two devices)...`);
    await ramp(o.bots, Math.floor(o.bots * o.registeredShare));
    const heapStart = await Promise.all(nodes.map((_, i) => metrics(i)));
    const startCounts = await redisCounts();
    r.redis.keysStart = startCounts.keys;
    r.redis.marksStart = startCounts.marks;
    log(`ramp done in ${sec()} s: ${connected} connected`);

    // ---------------------------------------------------------------- revocations
    /** Users that can be the target now: idle, every device connected. */
    const idle = (registered: boolean | undefined, minBots = 1) => {
      const out: SoakUser[] = [];
      for (const u of users) {
        if (u.busy || u.bots.length < minBots || u.id === admin?.pair.user.id) continue;
        if (registered !== undefined && registered !== (u.password !== undefined)) continue;
        // Its connections' tokens must outlive the verdict (a covered bot does not refresh).
        const until = Date.now() + o.dropDeadlineMs + 2000;
        if (u.bots.every((b) => b.current && !b.frozen && b.socketTokenExp > until)) out.push(u);
        if (out.length >= 50) break;
      }
      return out;
    };
    const chooseKind = (): Kind => {
      const entries = Object.entries(WEIGHT) as [Kind, number][];
      let x = Math.random() * entries.reduce((s, [, w]) => s + w, 0);
      for (const [k, w] of entries) if ((x -= w) < 0) return k;
      return "kick";
    };

    /** Issues one revocation of `kind` on a fitting user and judges it; resolves when done (respawn included). */
    async function revoke(kind: Kind): Promise<void> {
      const registeredOnly = kind === "password_change" || kind === "session_delete";
      const wantRegistered = registeredOnly || (["kick", "ban", "logout_all"].includes(kind) && Math.random() < 0.3) ? true : undefined;
      const candidates = idle(wantRegistered, kind === "session_delete" ? 2 : 1);
      if (candidates.length === 0) return hooks.error(`no-target:${kind}`);
      const user = pick(candidates);
      user.busy = true;
      const actor = pick(user.bots);
      const sessionWide = ["logout", "session_delete", "admin_session_revoke", "refresh_reuse"].includes(kind);
      const victim = kind === "session_delete" ? user.bots.find((b) => b !== actor)! : actor;
      const coveredBots = sessionWide ? [victim] : [...user.bots];
      // Freeze first: no refresh of a covered bot may overtake the revocation, and none may end its socket.
      for (const b of coveredBots) {
        b.frozen = true;
        judging.add(b);
      }
      const target = { reason: REASON[kind], answeredAt: Infinity };
      for (const b of coveredBots) targetedFor.set(b, [...(targetedFor.get(b) ?? []), target]);
      const covered = coveredBots.map((b) => b.current!).filter(Boolean);
      const snapshot = coveredBots.map((b) => ({ bot: b, pair: b.pair }));
      for (const inc of covered) pending.set(inc, { kind });

      const node = pick(upNodes());
      const sentAt = Date.now();
      let ok = false;
      let freshPair: TokenPair | undefined;
      let rotated: TokenPair | undefined;
      const token = actor.pair.accessToken;
      try {
        switch (kind) {
          case "logout":
            ok = (await http(node, "POST", "/auth/logout", { token })).status === 204;
            break;
          case "logout_all":
            ok = (await http(node, "POST", "/auth/logout-all", { token })).status === 204;
            break;
          case "password_change": {
            const next = randomBytes(9).toString("base64url");
            const res = await http<TokenPair>(node, "POST", "/auth/password", { token, body: { oldPassword: user.password, newPassword: next } });
            ok = res.status === 200;
            if (ok) {
              user.password = next;
              freshPair = res.body;
            }
            break;
          }
          case "session_delete":
            ok = (await http(node, "DELETE", `/sessions/${encodeURIComponent(victim.sessionId)}`, { token })).status === 204;
            break;
          case "kick":
            ok = (await http(node, "POST", `/admin/users/${user.id}/kick`, { token: await adminToken(), body: { reason: "soak" } })).status === 202;
            break;
          case "ban":
            ok = (await http(node, "POST", `/admin/users/${user.id}/ban`, { token: await adminToken(), body: { reason: "soak" } })).status === 202;
            break;
          case "admin_session_revoke":
            ok = (await http(node, "POST", `/admin/sessions/${encodeURIComponent(victim.sessionId)}/revoke`, { token: await adminToken(), body: { reason: "soak" } })).status === 202;
            break;
          case "refresh_reuse": {
            // Rotate the bot's refresh token behind its back, then present the old one again.
            const first = await http<TokenPair>(node, "POST", "/auth/refresh", { body: { refreshToken: victim.pair.refreshToken } });
            if (first.status === 200) rotated = first.body;
            const again = await http<{ error?: { code: string } }>(pick(upNodes()), "POST", "/auth/refresh", { body: { refreshToken: victim.pair.refreshToken } });
            ok = first.status === 200 && again.status === 401 && again.body?.error?.code === "REFRESH_REUSED";
            break;
          }
          case "revoke_all":
            break; // see revokeAll()
        }
      } catch {
        ok = false;
      }
      const ackAt = Date.now();
      target.answeredAt = ackAt;
      if (!ok) {
        r.revocations.failed++;
        r.revocations.failedByKind[kind] = (r.revocations.failedByKind[kind] ?? 0) + 1;
        // It may still have been applied: whatever drops meanwhile is not counted against the server.
        for (const inc of covered) {
          pending.set(inc, { kind, failed: true });
          if (inc.endedAt !== undefined) classifyEnd(inc); // ended during the call, while its verdict was awaited
        }
        // Applied or not, nobody knows: its bots leave the population unjudged and come back anew.
        for (const b of coveredBots) {
          judging.delete(b);
          dropBot(b);
        }
        for (const inc of covered) pending.delete(inc);
        // Nor the user: the call may still land later (a ban after a timeout). Guests take its place.
        for (const b of [...user.bots]) dropBot(b);
        users.delete(user);
        if (!stopping) await Promise.all(coveredBots.map(() => addGuest()));
        return;
      }
      r.revocations.issued++;
      r.revocations.byKind[kind] = (r.revocations.byKind[kind] ?? 0) + 1;
      for (const b of coveredBots) coveredAt.set(b, ackAt);
      await judge({ kind, sentAt, ackAt, covered });
      const tokens: Tokens[] = snapshot.flatMap(({ bot, pair }) => [{ pair }, ...(lateTokens.get(bot) ?? []).map((p) => ({ pair: p, why: "minted by a refresh that raced the revocation" }))]);
      if (rotated) tokens.push({ pair: rotated, why: "the rotation before the reuse" });
      await checkAdmission(kind, tokens);
      for (const b of coveredBots) {
        judging.delete(b);
        coveredAt.delete(b);
        lateTokens.delete(b);
        dropBot(b);
      }
      if (kind === "ban") {
        const res = await http(pick(upNodes()), "DELETE", `/admin/users/${user.id}/ban`, { token: await adminToken() });
        if (res.status === 204) r.revocations.unbans++;
        else hooks.error(`unban:${res.status}`);
        // Unbanned: the old tokens must stay dead.
        await checkAdmission(kind, tokens);
      }
      // Busy until its devices are back: a revocation picked while a respawn login is in flight
      // would cover a device it never saw (rightly dropped, yet judged wrongly dropped) or refuse
      // that login (a ban: 403).
      await respawn(user, coveredBots, freshPair, kind);
      user.busy = false;
    }

    /** Waits for each covered connection's verdict. */
    async function judge(rev: Revocation): Promise<void> {
      const expected = REASON[rev.kind];
      await Promise.all(
        rev.covered.map(async (inc) => {
          await Promise.race([inc.ended, delay(Math.max(0, rev.ackAt + o.dropDeadlineMs - Date.now()))]);
          pending.delete(inc);
          r.covered++;
          const node = nodes[inc.node]!.nodeId;
          if (inc.endedAt === undefined) {
            r.missed++;
            sample(r.samples.missed, { kind: rev.kind, node, expected, detail: `still connected ${o.dropDeadlineMs} ms after the 2xx` });
          } else if (inc.revoked?.reason === expected && inc.endReason === "io server disconnect") {
            r.droppedRight++;
            latencies.push(inc.endedAt - rev.sentAt);
          } else if (unrenewed(inc)) {
            r.expiredBeforeVerdict++;
          } else if (!inc.revoked && inc.endReason !== "io server disconnect" && nodeDown(inc.node, inc.endedAt - 1000)) {
            r.lostToFault++;
          } else {
            r.missed++;
            sample(r.samples.missed, { kind: rev.kind, node, expected, got: inc.revoked?.reason, endReason: inc.endReason });
          }
        }),
      );
    }

    /** Every covered token, on every node in service: GET /me, a handshake, and its refresh token. */
    async function checkAdmission(kind: Kind, pairs: Tokens[]): Promise<void> {
      const seen = new Set<string>();
      const jobs: Promise<void>[] = [];
      for (const { pair: p, why } of pairs) {
        const admitted = (node: number, detail: string) => {
          r.admitted++;
          sample(r.samples.admitted, { kind, node: nodes[node]!.nodeId, detail: why ? `${detail}; token ${why}` : detail });
        };
        if (seen.has(p.accessToken)) continue;
        seen.add(p.accessToken);
        for (const node of upNodes()) {
          r.admissionChecks += 2;
          jobs.push(http(node, "GET", "/me", { token: p.accessToken }).then((res) => void (res.status === 200 && admitted(node, "GET /me 200"))));
          jobs.push(handshakeAdmits(nodes[node]!.url, p.accessToken).then((yes) => void (yes && admitted(node, "handshake accepted"))));
        }
        r.admissionChecks++;
        const node = pick(upNodes());
        jobs.push(http(node, "POST", "/auth/refresh", { body: { refreshToken: p.refreshToken } }).then((res) => void (res.status === 200 && admitted(node, "refresh 200"))));
      }
      await Promise.all(jobs);
    }

    /** The covered devices come back: guests as new guests, registered users log in again (the password change's fresh pair serves one). */
    async function respawn(user: SoakUser, gone: SoakBot[], freshPair: TokenPair | undefined, after: string): Promise<void> {
      if (stopping) return;
      if (user.password === undefined) {
        users.delete(user);
        await Promise.all(gone.map(() => addGuest()));
        return;
      }
      await Promise.all(
        gone.map((b, i) => {
          if (i === 0 && freshPair) return addBot(user, freshPair, b.node, `the pair returned by ${after}`);
          return loginDevice(user, i, b.node, after);
        }),
      );
    }

    // ---------------------------------------------------------------- faults
    async function injectFault(fault: Fault): Promise<void> {
      const at = sec();
      const note = (detail: string) => {
        r.faults.push({ fault, atSec: at, detail });
        log(`fault at ${at} s: ${fault}: ${detail}`);
      };
      switch (fault) {
        case "pubsub-kill": {
          const c = new Redis(redis!.url, { maxRetriesPerRequest: 1 });
          c.on("error", () => undefined);
          const n = await c.client("KILL", "TYPE", "pubsub");
          c.disconnect();
          note(`CLIENT KILL TYPE pubsub closed ${n} subscriber connections`);
          break;
        }
        case "node-kill": {
          const i = 1 % nodes.length;
          const port = nodes[i]!.port;
          downUntil.set(i, Infinity);
          await nodes[i]!.kill();
          await delay(2000);
          nodes[i] = await startNode(i, port);
          restarted.add(i);
          downUntil.set(i, Date.now() + 1000);
          note(`${nodes[i]!.nodeId} SIGKILLed, restarted on the same port 2 s later`);
          break;
        }
        case "node-stop": {
          const i = 2 % nodes.length;
          downUntil.set(i, Infinity);
          nodes[i]!.proc.kill("SIGSTOP");
          await delay(3000);
          nodes[i]!.proc.kill("SIGCONT");
          downUntil.set(i, Date.now() + 1000);
          note(`${nodes[i]!.nodeId} SIGSTOPped for 3 s, then SIGCONT`);
          break;
        }
        case "redis-restart": {
          await redis!.restart();
          note("redis-server restarted (SIGTERM, AOF on): same data");
          break;
        }
        case "subscribe-refused": {
          proxy!.refuseSubscribe(true);
          const cut = proxy!.cutSubscribers();
          await delay(8000);
          proxy!.refuseSubscribe(false);
          // Subscriptions refused meanwhile are not retried by the client: cut again so they subscribe now.
          const again = proxy!.cutSubscribers();
          note(`SUBSCRIBE refused for 8 s (${cut} subscriber connections cut, ${proxy!.refused} subscriptions refused; ${again} cut again to resubscribe)`);
          break;
        }
      }
    }

    // ---------------------------------------------------------------- run
    let lastMsgs = 0;
    let lastAt = Date.now();
    const progress = (): SoakProgress => {
      const now = Date.now();
      const p: SoakProgress = {
        elapsedSec: sec(),
        connected,
        issued: r.revocations.issued,
        failed: r.revocations.failed,
        droppedRight: r.droppedRight,
        missed: r.missed,
        wronglyDropped: r.wronglyDropped,
        admitted: r.admitted,
        p99Ms: percentile(latencies, 99),
        msgsPerSec: Math.round(((r.traffic.messages - lastMsgs) * 1000) / Math.max(1, now - lastAt)),
        lagP99Ms: Math.round(lag.percentile(99) / 1e6),
      };
      lastMsgs = r.traffic.messages;
      lastAt = now;
      return p;
    };
    if (options.onProgress) progressTimer = setInterval(() => options.onProgress!(progress()), options.progressEveryMs ?? 5000);

    const steadyStart = Date.now();
    const steadyEnd = steadyStart + o.durationSec * 1000;
    const inflight = new Set<Promise<void>>();
    const faultRuns: Promise<void>[] = [];
    o.faults.forEach((f, i) => {
      // Spread over the middle of the run.
      const at = steadyStart + o.durationSec * 1000 * ((i + 1) / (o.faults.length + 1));
      faultRuns.push(delay(at - Date.now()).then(() => injectFault(f)));
    });
    log(`steady: ${o.rate} revocations/s for ${o.durationSec} s${o.faults.length ? `, faults: ${o.faults.join(", ")}` : ""}`);
    for (let n = 0; Date.now() < steadyEnd; n++) {
      const due = steadyStart + (n * 1000) / o.rate;
      if (due > Date.now()) await delay(due - Date.now());
      const job = revoke(chooseKind()).catch((err) => hooks.error(`revoke:${(err as Error).message}`));
      inflight.add(job);
      void job.finally(() => inflight.delete(job));
    }
    await Promise.all(faultRuns);
    await Promise.all(inflight);

    if (o.revokeAll) {
      log("revoke-all: every connection must drop with revoked_all");
      const all = [...bots];
      for (const b of all) {
        b.frozen = true;
        judging.add(b);
        b.user.busy = true;
      }
      const covered = all.map((b) => b.current).filter((c): c is Incarnation => c !== undefined);
      for (const inc of covered) pending.set(inc, { kind: "revoke_all" });
      const snapshot = all.map((b) => b.pair);
      const sentAt = Date.now();
      const res = await http(pick(upNodes()), "POST", "/admin/revoke-all", { token: await adminToken() });
      admin = undefined; // revoke-all ends the admin's session too
      if (res.status === 202) {
        r.revocations.issued++;
        r.revocations.byKind.revoke_all = 1;
        await judge({ kind: "revoke_all", sentAt, ackAt: Date.now(), covered });
        // A sample of the tokens (every one would be thousands of handshakes).
        await checkAdmission("revoke_all", snapshot.slice(0, 100).map((pair) => ({ pair })));
      } else {
        r.revocations.failed++;
        r.revocations.failedByKind.revoke_all = 1;
      }
    }

    stopping = true;
    clearInterval(progressTimer);
    for (const b of bots) b.retire();
    bots.clear();
    const lastRevocation = Date.now();
    if (o.waitForTtl) {
      const waitMs = (o.accessTtlSec + CLOCK_TOLERANCE_SEC + 2) * 1000 - (Date.now() - lastRevocation);
      log(`waiting ${Math.round(waitMs / 1000)} s for the last marks to expire (access lifetime ${o.accessTtlSec} s + ${CLOCK_TOLERANCE_SEC} s tolerance)`);
      await delay(waitMs);
      r.redis.waitedForTtlSec = Math.round(waitMs / 1000);
    }
    const heapEnd = await Promise.all(nodes.map((_, i) => metrics(i)));
    const endCounts = await redisCounts();
    r.redis.keysEnd = endCounts.keys;
    r.redis.marksEnd = endCounts.marks;
    r.nodes = nodes.map((n, i) => ({ nodeId: n.nodeId, heapStartBytes: heapStart[i] ?? null, heapEndBytes: heapEnd[i] ?? null, restarted: restarted.has(i) }));
    r.latencyMs = { count: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.length ? Math.max(...latencies) : 0 };
    r.harness = { eventLoopP99Ms: Math.round(lag.percentile(99) / 1e6), eventLoopMaxMs: Math.round(lag.max / 1e6) };
    r.durationSec = sec();
    r.ok = r.missed === 0 && r.wronglyDropped === 0 && r.admitted === 0 && r.revocations.issued > 0;
    return r;
  } finally {
    stopping = true;
    clearInterval(progressTimer);
    lag.disable();
    for (const b of bots) b.retire();
    await Promise.all(nodes.map((n) => n.stop().catch(() => null)));
    await proxy?.close();
    await redis?.stop();
    rmSync(aofDir, { recursive: true, force: true });
  }
}

/** Does the server accept a socket.io handshake with this token? (A connection is closed at once.) */
function handshakeAdmits(url: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = io(url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true, timeout: 4000 });
    const done = (v: boolean) => {
      s.disconnect();
      resolve(v);
    };
    s.once("connect", () => done(true));
    s.once("connect_error", () => done(false));
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/** Nearest-rank percentile; 0 for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
