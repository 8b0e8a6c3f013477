/**
 * `npm run bots -- --url http://127.0.0.1:3000 --count 200 [--rooms 5] [--duration 60]`
 *
 * Scripted guest players built on the client SDK: each logs in as a guest,
 * connects, joins one of the rooms, wanders about and chats now and then. A
 * one-line progress display (connected / revoked / errors / msgs per s) is
 * kept on stderr; Ctrl-C stops every bot cleanly and signs its guests out.
 * With `--accounts <file>` the bots play as registered accounts kept in that
 * file and resume their sessions on the next run, so repeated runs create no
 * accounts and make no logins. `runBots()` is the reusable core.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { exitOnHelp, parseCli } from "./lib/cli";
import type { TokenPair } from "../shared/claims";
import { ARENA, Events } from "../shared/protocol";
import { GatehouseClient, GatehouseClientError, type TokenStorage } from "../client/sdk";

/** A registered bot account, with its session kept between runs (a refresh on the next run instead of a login). */
export interface BotAccount {
  username: string;
  password: string;
  /** false until the account has been registered on the server */
  registered: boolean;
  pair?: TokenPair;
}

export interface BotOptions {
  /** the node to play on, e.g. http://127.0.0.1:3000 */
  url: string;
  /** how many bots */
  count: number;
  /** rooms to spread them over: bot-room-0 .. bot-room-(rooms-1) (default 5) */
  rooms?: number;
  /** stop after this many seconds; 0 or undefined = until `signal` aborts */
  durationSec?: number;
  /** move requests per bot per second (default 5) */
  movesPerSec?: number;
  /** mean seconds between a bot's chat lines; 0 = never (default 15) */
  chatEverySec?: number;
  /** bots logging in at once while ramping up (default 20) */
  concurrency?: number;
  /** stops the run early (Ctrl-C) */
  signal?: AbortSignal;
  /**
   * Play as these accounts, bot i as accounts[i] (missing entries are created
   * and registered; the array is updated in place, sessions included, for the
   * caller to persist). Their sessions are kept at the end, not logged out.
   * Without it the bots are guests, logged out at the end.
   */
  accounts?: BotAccount[];
  /** called about twice a second with the running totals */
  onProgress?(stats: BotStats): void;
}

export interface BotStats {
  /** bots whose socket is connected now */
  connected: number;
  /** bots started so far */
  started: number;
  /** bots whose session was revoked (they stop) */
  revoked: number;
  /** failures: logins, refused handshakes, failed acks */
  errors: number;
  /** messages received by all bots (state ticks, chat, joins, leaves) */
  messages: number;
  /** received messages per second over the last progress interval */
  msgsPerSec: number;
  /** revocation reasons seen, with counts */
  revokedBy: Record<string, number>;
  /** the last error, for the display */
  lastError?: string;
  /** guests logged out at the end */
  signedOut: number;
  elapsedMs: number;
}

const LINES = ["gg", "anyone here?", "nice move", "brb", "hello", "lag?", "follow me", "o/"];
const PROGRESS_MS = 500;

/** Runs the bots until `durationSec` passes or `signal` aborts; resolves with the final totals once all are closed. */
export async function runBots(opts: BotOptions): Promise<BotStats> {
  const rooms = opts.rooms ?? 5;
  const movesPerSec = opts.movesPerSec ?? 5;
  const chatEverySec = opts.chatEverySec ?? 15;
  const concurrency = opts.concurrency ?? 20;
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new TypeError("runBots: count must be a positive integer");
  if (!Number.isInteger(rooms) || rooms < 1) throw new TypeError("runBots: rooms must be a positive integer");

  const t0 = Date.now();
  const stats: BotStats = { connected: 0, started: 0, revoked: 0, errors: 0, messages: 0, msgsPerSec: 0, revokedBy: {}, elapsedMs: 0, signedOut: 0 };
  const clients: { client: GatehouseClient; account: BotAccount | undefined }[] = [];
  const timers = new Set<ReturnType<typeof setInterval>>();
  let stopping = false;

  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      stopping = true;
      resolve();
    };
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener("abort", stop, { once: true });
    if (opts.durationSec && opts.durationSec > 0) setTimeout(stop, opts.durationSec * 1000).unref();
  });

  const fail = (err: unknown) => {
    stats.errors++;
    stats.lastError = err instanceof GatehouseClientError ? err.code : err instanceof Error ? err.message : String(err);
  };

  let lastCount = 0;
  let lastAt = t0;
  const progress = setInterval(() => {
    const now = Date.now();
    stats.msgsPerSec = Math.round(((stats.messages - lastCount) * 1000) / Math.max(1, now - lastAt));
    lastCount = stats.messages;
    lastAt = now;
    stats.elapsedMs = now - t0;
    opts.onProgress?.({ ...stats, revokedBy: { ...stats.revokedBy } });
  }, PROGRESS_MS);

  async function startBot(i: number): Promise<void> {
    const account = opts.accounts ? (opts.accounts[i] ??= newAccount()) : undefined;
    const client = new GatehouseClient({ baseUrl: opts.url, device: `bot ${i}`, ...(account ? { storage: accountStorage(account) } : {}) });
    clients.push({ client, account });
    stats.started++;
    let live = false;
    client.on("connect", () => {
      if (!live) stats.connected++;
      live = true;
    });
    client.on("disconnect", () => {
      if (live) stats.connected--;
      live = false;
    });
    client.on("error", fail);
    const mine: ReturnType<typeof setInterval>[] = [];
    client.on("revoked", (e) => {
      stats.revoked++;
      stats.revokedBy[e.reason] = (stats.revokedBy[e.reason] ?? 0) + 1;
      // A revoked bot is done: it stops moving and talking (the SDK has stopped the rest).
      for (const t of mine) {
        clearInterval(t);
        timers.delete(t);
      }
    });

    await signIn(client, account, `bot ${i}`);
    if (stopping) return;
    const socket = await client.connect();
    const count = () => stats.messages++;
    for (const ev of [Events.STATE, Events.CHAT_MESSAGE, Events.PLAYER_JOINED, Events.PLAYER_LEFT] as const) socket.on(ev, count);
    // A reconnection (node restart) is a new player on the server: join again.
    const room = `bot-room-${i % rooms}`;
    client.on("connect", () => void client.joinRoom(room).catch(fail));
    const { you } = await client.joinRoom(room);
    if (!client.isLoggedIn) return; // revoked while joining

    // Wander: pick a waypoint, walk toward it, pick another when close.
    let pos = { x: you.x, y: you.y };
    let goal = randomPoint();
    socket.on(Events.STATE, (st) => {
      const me = st.players.find((p) => p.playerId === you.playerId);
      if (me) pos = { x: me.x, y: me.y };
    });
    const mover = setInterval(() => {
      if (Math.hypot(goal.x - pos.x, goal.y - pos.y) < 10) goal = randomPoint();
      client.move(goal.x, goal.y);
    }, 1000 / movesPerSec);
    timers.add(mover);
    mine.push(mover);
    if (chatEverySec > 0) {
      const chatter = setInterval(() => {
        if (Math.random() < 1 / chatEverySec) client.chat(LINES[Math.floor(Math.random() * LINES.length)]!).catch(fail);
      }, 1000);
      timers.add(chatter);
      mine.push(chatter);
    }
  }

  // Ramp up a few at a time, so logins and handshakes do not all land in one instant.
  let next = 0;
  const worker = async () => {
    while (!stopping && next < opts.count) {
      const i = next++;
      await startBot(i).catch(fail);
    }
  };
  const workers = Promise.all(Array.from({ length: Math.min(concurrency, opts.count) }, worker));
  await stopped;
  // Bots still signing in finish first, so none is left signed in behind the logouts.
  await workers;

  clearInterval(progress);
  for (const t of timers) clearInterval(t);
  // Guests are logged out: nobody could ever use their sessions again. Accounts
  // keep theirs (stopped, saved in the pair) for the next run.
  const outcomes = await Promise.allSettled(
    clients.map(async ({ client, account }) => {
      if (account || !client.isLoggedIn) return client.close();
      await client.logout();
      stats.signedOut++;
    }),
  );
  for (const o of outcomes) if (o.status === "rejected") fail(o.reason);
  stats.elapsedMs = Date.now() - t0;
  stats.connected = 0;
  return stats;
}

/** Guest, or the account: its last session if still alive (one refresh), else a login (or the first registration). */
async function signIn(client: GatehouseClient, account: BotAccount | undefined, device: string): Promise<void> {
  if (!account) {
    await client.guest(device);
    return;
  }
  if (client.isLoggedIn) {
    try {
      await client.refresh();
      return;
    } catch {
      client.forget(); // revoked or expired since the last run
    }
  }
  if (account.registered) {
    await client.login(account.username, account.password, device);
    return;
  }
  await client.register(account.username, account.password, device);
  account.registered = true;
}

function newAccount(): BotAccount {
  return { username: `bot-${randomBytes(6).toString("hex")}`, password: randomBytes(18).toString("base64url"), registered: false };
}

/** The SDK keeps the account's pair in the account itself (saved to the file at the end). */
function accountStorage(account: BotAccount): TokenStorage {
  return {
    load: () => account.pair ?? null,
    save: (pair) => {
      if (pair) account.pair = pair;
      else delete account.pair;
    },
  };
}

/** Reads `--accounts <file>` (a missing file = none yet). */
export function loadAccounts(file: string): BotAccount[] {
  if (!existsSync(file)) return [];
  const data = JSON.parse(readFileSync(file, "utf8")) as { accounts?: unknown };
  if (!Array.isArray(data.accounts)) throw new Error(`${file}: no "accounts" list`);
  return data.accounts.filter(
    (a): a is BotAccount => typeof a === "object" && a !== null && typeof a.username === "string" && typeof a.password === "string",
  );
}

/** Passwords and refresh tokens: readable by the owner only. */
export function saveAccounts(file: string, accounts: BotAccount[]): void {
  writeFileSync(file, `${JSON.stringify({ accounts }, null, 2)}\n`, { mode: 0o600 });
}

function randomPoint(): { x: number; y: number } {
  return { x: 20 + Math.random() * (ARENA.width - 40), y: 20 + Math.random() * (ARENA.height - 40) };
}

/** "connected 180/200 · revoked 0 · errors 0 · 3 412 msgs/s · 12 s" */
export function formatProgress(s: BotStats, count: number): string {
  const reasons = Object.entries(s.revokedBy)
    .map(([r, n]) => `${r} ${n}`)
    .join(", ");
  return [
    `connected ${s.connected}/${count}`,
    `revoked ${s.revoked}${reasons ? ` (${reasons})` : ""}`,
    `errors ${s.errors}${s.lastError ? ` (last: ${s.lastError})` : ""}`,
    `${s.msgsPerSec} msgs/s`,
    `${Math.round(s.elapsedMs / 1000)} s`,
  ].join(" · ");
}

const USAGE = `usage: npm run bots -- --url http://127.0.0.1:3000 --count 200 [--rooms 5] [--duration 60]

  --url        a Gatehouse node (default http://127.0.0.1:3000)
  --count      how many guest bots (default 20)
  --rooms      rooms to spread them over (default 5)
  --duration   seconds to run; 0 = until Ctrl-C (default 0)
  --moves      move requests per bot per second (default 5)
  --chat       mean seconds between a bot's chat lines; 0 = silent (default 15)
  --accounts   a JSON file of bot accounts to play as (created if missing): no
               guests, and the next run resumes their sessions instead of logging in

Ctrl-C (or SIGTERM) stops the bots and logs the guests out; with --accounts the
sessions are kept in the file for the next run.

Many bots from one address trip the per-IP limits: start the server with
  RATE_LIMIT_LOGIN_IP=0 RATE_LIMIT_HANDSHAKE_IP=0 npm start
(or npm run cluster -- --nodes 3 --no-limits).`;

async function cli(): Promise<void> {
  exitOnHelp(USAGE);
  const values = parseCli(
    {
      url: { type: "string", default: "http://127.0.0.1:3000" },
      count: { type: "string", default: "20" },
      rooms: { type: "string", default: "5" },
      duration: { type: "string", default: "0" },
      moves: { type: "string", default: "5" },
      chat: { type: "string", default: "15" },
      accounts: { type: "string" },
    },
    USAGE,
  );
  const num = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) {
      console.error(`--${name} must be a number >= ${min} (got "${v}")\n\n${USAGE}`);
      process.exit(1);
    }
    return n;
  };
  const count = Math.floor(num("count", values.count, 1));
  const opts: BotOptions = {
    url: values.url,
    count,
    rooms: Math.floor(num("rooms", values.rooms, 1)),
    durationSec: num("duration", values.duration, 0),
    movesPerSec: num("moves", values.moves, 0.1),
    chatEverySec: num("chat", values.chat, 0),
  };
  const accountsFile = values.accounts;
  if (accountsFile) {
    try {
      opts.accounts = loadAccounts(accountsFile);
    } catch (err) {
      console.error(`--accounts: cannot read ${accountsFile}: ${(err as Error).message}`);
      process.exit(1);
    }
  }
  const abort = new AbortController();
  let interrupted = 0;
  const onSignal = () => {
    // A second Ctrl-C means "now".
    if (++interrupted > 1) process.exit(130);
    abort.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const show = (s: BotStats) => {
    const line = formatProgress(s, count);
    if (tty) process.stderr.write(`\r\x1b[2K${line}`);
    else if (Date.now() - lastLine >= 5000) {
      lastLine = Date.now();
      process.stderr.write(`${line}\n`);
    }
  };
  console.error(`${count} bots -> ${opts.url}, ${opts.rooms} room(s)${opts.durationSec ? `, ${opts.durationSec} s` : ", Ctrl-C to stop"}`);
  const final = await runBots({ ...opts, signal: abort.signal, onProgress: show });
  if (tty) process.stderr.write("\r\x1b[2K");
  if (accountsFile && opts.accounts) saveAccounts(accountsFile, opts.accounts);
  console.error(`done: ${formatProgress(final, count)}, ${final.messages} messages in all`);
  console.error(
    accountsFile ? `kept ${opts.accounts?.length ?? 0} account session(s) in ${accountsFile}` : `signed out ${final.signedOut} guest(s)`,
  );
  process.exit(final.started === 0 ? 1 : 0);
}

// Run as a program only (the benchmark bundle imports runBots without starting the CLI).
if (/[\\/]bots\.(?:js|ts|mjs)$/.test(process.argv[1] ?? "")) void cli();
