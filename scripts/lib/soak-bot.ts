/**
 * One soak player: a token pair, a socket.io socket, a refresh timer with
 * in-band `auth:refresh`, and a room to wander and chat in.
 *
 * Built on socket.io-client directly rather than the SDK: on `session:revoked`
 * the SDK closes the socket itself, so whether the SERVER then disconnected it
 * could not be seen; and the soak must be able to hold a bot's refreshes while a
 * revocation covering it is judged (a refresh answered "invalid" would make the
 * SDK end the socket on the client side, hiding a missed revocation).
 *
 * Every connection of the socket is an Incarnation: the unit the soak judges
 * (covered and dropped with the right reason, missed, wrongly dropped).
 */
import { request } from "node:http";
import { io, type Socket } from "socket.io-client";
import type { TokenPair } from "../../shared/claims";
import { ARENA, Events, type SessionRevokedPayload } from "../../shared/protocol";

export interface SoakUser {
  id: string;
  username: string;
  /** registered users only; guests have none */
  password?: string;
  bots: SoakBot[];
  /** a revocation covering this user is being issued or judged */
  busy: boolean;
}

export interface Incarnation {
  bot: SoakBot;
  node: number;
  connectedAt: number;
  /** the session:revoked payload, and when it came */
  revoked?: { reason: string; at: number };
  endedAt?: number;
  /** socket.io's disconnect reason ("io server disconnect", "transport close", ...) */
  endReason?: string;
  /** exp (epoch ms) of the token the server held for this connection when it ended */
  tokenExp: number;
  /** resolves when the connection ends */
  ended: Promise<void>;
  endedResolve(): void;
}

export interface BotHooks {
  /** a connection opened (first or reconnect) */
  onConnect(inc: Incarnation): void;
  /** a connection ended, for any reason */
  onEnd(inc: Incarnation): void;
  /** counts: HTTP refreshes, in-band renewals, messages received, errors by code */
  count(what: "httpRefresh" | "inBand" | "inBandRefused" | "messages" | "chat", n?: number): void;
  error(code: string): void;
  /** a refresh that completed after the bot was frozen: its tokens belong to the covered session too */
  lateRefresh(bot: SoakBot, pair: TokenPair): void;
}

export interface BotPlan {
  room?: string;
  movesPerSec: number;
  chatEverySec: number;
}

const LINES = ["gg", "anyone here?", "nice move", "brb", "hello", "lag?", "follow me", "o/"];

const CONNECT_TIMEOUT_MS = 20_000;

export class SoakBot {
  socket: Socket | undefined;
  /** the open connection, if any */
  current: Incarnation | undefined;
  /** refreshes stopped while a revocation covering this bot is judged */
  frozen = false;
  /** out of the population: its session was revoked, or the run is over */
  retired = false;
  /** exp (epoch ms) of the token the server holds for the open connection: the handshake's, or the last renewal it acked */
  socketTokenExp = 0;
  /** a refresh of ours got no answer (timeout / 5xx): it may have rotated the token anyway */
  lostRefresh = false;
  private refreshTimer: NodeJS.Timeout | undefined;
  private timers: NodeJS.Timeout[] = [];
  private pos = { x: ARENA.width / 2, y: ARENA.height / 2 };
  private goal = randomPoint();

  constructor(
    readonly id: number,
    readonly user: SoakUser,
    public pair: TokenPair,
    readonly node: number,
    readonly url: string,
    private readonly hooks: BotHooks,
  ) {}

  get sessionId(): string {
    return this.pair.sessionId;
  }

  /** Connects; resolves once connected, rejects on a refused handshake. */
  connect(plan: BotPlan): Promise<void> {
    const socket = io(this.url, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 2000,
      // A function: a reconnection (its node restarted) presents the token current then.
      auth: (cb) => {
        this.socketTokenExp = expOf(this.pair.accessToken);
        cb({ token: this.pair.accessToken });
      },
    });
    this.socket = socket;
    socket.on(Events.SESSION_REVOKED, (p: SessionRevokedPayload) => {
      if (this.current) this.current.revoked ??= { reason: p?.reason, at: Date.now() };
    });
    socket.on("disconnect", (reason) => {
      const inc = this.current;
      this.current = undefined;
      if (!inc) return;
      inc.endedAt = Date.now();
      inc.endReason = reason;
      inc.tokenExp = this.socketTokenExp;
      inc.endedResolve();
      this.hooks.onEnd(inc);
    });
    socket.onAny(() => this.hooks.count("messages"));
    socket.on(Events.STATE, (st: { players: { playerId: string; x: number; y: number }[] }) => {
      const me = st.players.find((p) => p.playerId === socket.id);
      if (me) this.pos = { x: me.x, y: me.y };
    });
    socket.on("connect", () => {
      let endedResolve!: () => void;
      const ended = new Promise<void>((r) => (endedResolve = r));
      const inc: Incarnation = { bot: this, node: this.node, connectedAt: Date.now(), tokenExp: this.socketTokenExp, ended, endedResolve };
      this.current = inc;
      this.hooks.onConnect(inc);
      if (plan.room) void this.ack(Events.ROOM_JOIN, { roomId: plan.room });
    });
    this.scheduleRefresh();
    if (plan.room && plan.movesPerSec > 0) {
      this.timers.push(
        setInterval(() => {
          if (!socket.connected) return;
          if (Math.hypot(this.goal.x - this.pos.x, this.goal.y - this.pos.y) < 10) this.goal = randomPoint();
          socket.volatile.emit(Events.MOVE, this.goal);
        }, 1000 / plan.movesPerSec),
      );
    }
    if (plan.room && plan.chatEverySec > 0) {
      this.timers.push(
        setInterval(() => {
          if (!socket.connected || Math.random() >= 1 / plan.chatEverySec) return;
          this.hooks.count("chat");
          void this.ack(Events.CHAT_SEND, { text: LINES[Math.floor(Math.random() * LINES.length)] });
        }, 1000),
      );
    }
    return new Promise((resolve, reject) => {
      const ok = () => {
        socket.off("connect_error", bad);
        resolve();
      };
      const bad = (err: Error) => {
        // A refused handshake (middleware error) does not retry; a transient one does.
        if (socket.active) return;
        socket.off("connect", ok);
        reject(err);
      };
      socket.once("connect", ok);
      socket.on("connect_error", bad);
      // A node that keeps refusing at the transport (restarting, starved) must not hold the
      // harness forever: the bot gives up and is counted as a handshake error.
      const timer = setTimeout(() => {
        if (socket.connected) return;
        socket.off("connect", ok);
        socket.off("connect_error", bad);
        socket.disconnect();
        reject(new Error("no connection within 20 s"));
      }, CONNECT_TIMEOUT_MS);
      socket.once("connect", () => clearTimeout(timer));
    });
  }

  private async ack(event: string, payload: unknown): Promise<void> {
    try {
      const r = (await this.socket!.timeout(5000).emitWithAck(event, payload)) as { ok: boolean; error?: { code: string } };
      if (!r.ok) this.hooks.error(`${event}:${r.error?.code}`);
    } catch {
      if (this.socket?.connected) this.hooks.error(`${event}:TIMEOUT`);
    }
  }

  /** Refresh at 50-65% of the access lifetime (jittered so 2,000 bots do not refresh in step; early, so a busy machine does not expire them). */
  private scheduleRefresh(delayMs = this.pair.expiresIn * 1000 * (0.5 + Math.random() * 0.15)): void {
    clearTimeout(this.refreshTimer);
    if (this.retired) return;
    this.refreshTimer = setTimeout(() => void this.refresh(), delayMs);
  }

  private async refresh(): Promise<void> {
    if (this.retired) return;
    if (this.frozen) return this.scheduleRefresh(1000);
    const sent = this.pair;
    this.hooks.count("httpRefresh");
    const res = await httpJson<TokenPair & { error?: { code: string } }>(`${this.url}/auth/refresh`, "POST", { body: { refreshToken: sent.refreshToken }, timeoutMs: 10_000 });
    const body = res.body;
    if (res.status !== 200 || !body?.accessToken) {
      // Frozen meanwhile: a revocation is being judged, the refusal is its business.
      if (!this.frozen && !this.retired) this.hooks.error(`refresh:${body?.error?.code ?? res.status}`);
      if (res.status >= 500 || res.status === 0) this.lostRefresh = true;
      if (res.status >= 500 || res.status === 429 || res.status === 0) return this.scheduleRefresh(1000);
      return; // refused for good: the session's socket is the revocation's business
    }
    if (this.frozen || this.retired) {
      // It raced the revocation now being judged: its tokens must be dead too.
      this.hooks.lateRefresh(this, body);
      return;
    }
    this.pair = body;
    await this.pushInBand(body.accessToken);
    this.scheduleRefresh();
  }

  /** auth:refresh on the live socket: no reconnect. */
  private async pushInBand(token: string): Promise<void> {
    const s = this.socket;
    if (!s?.connected) return;
    this.hooks.count("inBand");
    try {
      const ack = (await s.timeout(5000).emitWithAck(Events.AUTH_REFRESH, { token })) as { ok: boolean; error?: { code: string } };
      if (ack.ok) this.socketTokenExp = Math.max(this.socketTokenExp, expOf(token));
      if (!ack.ok && !this.frozen) {
        this.hooks.count("inBandRefused");
        this.hooks.error(`auth:refresh:${ack.error?.code}`);
      }
    } catch {
      if (s.connected && !this.frozen) this.hooks.error("auth:refresh:TIMEOUT");
    }
  }

  /** Stops everything: timers and the socket (a client-side close, after the run or after the verdict). */
  retire(): void {
    this.retired = true;
    clearTimeout(this.refreshTimer);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.socket?.disconnect();
  }
}

/** exp of a JWT in epoch ms (decoded, not verified: the server verifies). */
function expOf(token: string): number {
  try {
    return Number(JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")).exp) * 1000;
  } catch {
    return 0;
  }
}

function randomPoint(): { x: number; y: number } {
  return { x: 20 + Math.random() * (ARENA.width - 40), y: 20 + Math.random() * (ARENA.height - 40) };
}

/**
 * One JSON HTTP call on a fresh connection (no keep-alive: a pooled connection
 * that the server closes as idle at the moment it is reused fails the call with
 * "other side closed", which a soak must not mistake for a server refusal).
 * Status 0 = no answer (network error or timeout).
 */
export function httpJson<T = any>(url: string, method: string, opts: { token?: string; body?: unknown; timeoutMs?: number } = {}): Promise<{ status: number; body: T; error?: string }> {
  return new Promise((resolve) => {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (payload !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    const req = request(url, { method, headers, agent: false, timeout: opts.timeoutMs ?? 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON (/metrics)
        }
        resolve({ status: res.statusCode ?? 0, body: body as T });
      });
      res.on("error", (err) => resolve({ status: 0, body: undefined as T, error: err.message }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ status: 0, body: undefined as T, error: err.message }));
    req.end(payload);
  });
}
