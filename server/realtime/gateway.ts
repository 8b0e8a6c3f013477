/**
 * The socket.io side of authentication: the handshake check (io.use, so a
 * refusal reaches the client as a coded connect_error — pitfall 5), live token
 * expiry with in-band `auth:refresh`, and forced disconnects for revocations,
 * found through local per-user / per-session indexes (O(covered sockets)).
 */
import type { IncomingMessage } from "node:http";
import { performance } from "node:perf_hooks";
import type { DefaultEventsMap, Server, Socket } from "socket.io";
import type { Logger } from "pino";
import type { RateLimiterAbstract } from "rate-limiter-flexible";
import type { AccessClaims } from "../../shared/claims";
import { ErrorCode, GatehouseError, errorMessage } from "../../shared/errors";
import { AuthRefreshPayload, Events, revokedMessage, type Ack, type RevocationReason } from "../../shared/protocol";
import type { CheckResult, LiveTokenCheck } from "../auth/check";
import { consume } from "../http/rate-limits";
import { describeInvalid } from "../http/validate";
import type { Clock } from "../clock";
import type { Metrics } from "../metrics";
import type { RevocationCache } from "../revocation/cache";
import type { RevocationEvent } from "../store/store";
import type { Presence } from "./presence";
import { addTo, removeFrom } from "../util/multimap";
import { ExpiryQueue } from "./expiry";

export interface SocketData {
  claims: AccessClaims;
  username: string;
  connectedAt: number;
  /** set once the server has decided to drop this socket, so it is dropped once */
  revoked?: boolean;
}
export type GameSocket = Socket<DefaultEventsMap, DefaultEventsMap, DefaultEventsMap, SocketData>;

export interface GatewayDeps {
  io: Server;
  check: LiveTokenCheck;
  cache: RevocationCache;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  presence: Presence;
  nodeId: string;
  handshakeLimiter: RateLimiterAbstract | null;
  /**
   * The client address of a handshake request, for the per-IP limit. app.ts passes
   * express's own `req.ip` logic, so TRUST_PROXY means the same here as for HTTP
   * (behind N proxies, the Nth address from the right of X-Forwarded-For, never
   * the client-supplied leftmost one). Default: the peer address.
   */
  clientIp?(req: IncomingMessage): string | undefined;
  /** username for a user id (cached by the caller, then answered at once; not part of the check) */
  usernameOf(userId: string): string | null | Promise<string | null>;
}

/**
 * Longest run of forced disconnects before yielding to the event loop (pitfall 13: a drop costs
 * ~80-250 µs here). Sized by time, not count, so other players' messages wait at most about this
 * long whatever one drop costs on a busy machine.
 */
const DROP_SLICE_MS = 8;
/** Drops done at once (before setImmediate) per event-loop turn: a kick's few sockets take far less. */
const INLINE_DROP_MS = 2;
/** Periodic insurance against a missed feed event (pitfall 1). */
const SWEEP_INTERVAL_MS = 30_000;

export class Gateway {
  private readonly byUser = new Map<string, Set<GameSocket>>();
  private readonly bySession = new Map<string, Set<GameSocket>>();
  /** live sockets by token exp: dropped as token_expired when it passes (one timer for all) */
  private readonly expiry: ExpiryQueue<GameSocket>;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly connectionHandlers: ((socket: GameSocket) => void)[] = [];
  /** Sockets waiting to be dropped, in order, with the event that covered them (for its note). */
  private dropQueue: { socket: GameSocket; cause: RevocationEvent | undefined }[] = [];
  private dropHead = 0;
  private dropSlice: NodeJS.Immediate | null = null;
  /** a slice is running now (a drop's disconnect handlers may queue more: the running slice takes them) */
  private dropping = false;
  /** until when drops may still run inline in this event-loop turn (see dropCovered) */
  private inlineUntil: number | null = null;

  private readonly refreshListener: (this: GameSocket, payload: unknown, ack: unknown) => void;
  private readonly disconnectListener: (this: GameSocket) => void;

  constructor(private readonly deps: GatewayDeps) {
    const { io } = deps;
    const gateway = this;
    this.refreshListener = function (payload, ack) {
      void gateway.onAuthRefresh(this, payload, ack);
    };
    this.disconnectListener = function () {
      gateway.forget(this);
    };
    const refuse = (next: (err?: Error) => void, err: unknown): void => {
      const code = err instanceof GatehouseError ? err.code : ErrorCode.INTERNAL;
      if (!(err instanceof GatehouseError)) deps.log.error({ err }, "handshake failed");
      deps.metrics.handshakes.inc({ result: code });
      next(Object.assign(new Error(code), { data: { code, message: errorMessage[code] } }));
    };
    io.use((socket, next) => {
      let admitted: void | Promise<void>;
      try {
        admitted = this.admit(socket as GameSocket);
      } catch (err) {
        return refuse(next, err);
      }
      if (admitted instanceof Promise) admitted.then(() => next(), (err: unknown) => refuse(next, err));
      else next();
    });
    this.expiry = new ExpiryQueue(
      () => deps.clock.now(),
      (socket) => this.drop(socket, "token_expired"),
    );
    io.on("connection", (socket) => this.onConnection(socket as GameSocket));
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
  }

  /** Lets other modules (the game) add handlers to every admitted socket. */
  onSocket(handler: (socket: GameSocket) => void): void {
    this.connectionHandlers.push(handler);
  }

  /** Number of live authenticated sockets on this node. */
  get size(): number {
    return this.deps.io.of("/").sockets.size;
  }

  /** Sockets waiting for their token's expiry (one per live socket; tests use it to prove none leak). */
  get pendingExpiryTimers(): number {
    return this.expiry.size;
  }

  /** Sessions with at least one live socket on this node. */
  isSessionLocal(sessionId: string): boolean {
    return (this.bySession.get(sessionId)?.size ?? 0) > 0;
  }

  /** Disconnects the local sockets an event covers (each re-checked, so replays and echoes are harmless). */
  enforce(e: RevocationEvent): void {
    switch (e.kind) {
      case "session":
        this.dropCovered(this.bySession.get(e.sessionId ?? ""), e);
        break;
      case "user":
        this.dropCovered(this.byUser.get(e.userId ?? ""), e);
        break;
      case "global":
        this.dropCovered(this.deps.io.of("/").sockets.values() as Iterable<GameSocket>);
        break;
      case "unban":
        break;
    }
  }

  /** Re-checks every local socket against the cache (after a resync, and periodically). */
  sweep(): void {
    this.dropCovered(this.deps.io.of("/").sockets.values() as Iterable<GameSocket>);
  }

  /**
   * Shutdown: close every socket as a transport close (not a server
   * disconnect), so clients reconnect to another node and lose no session.
   */
  closeAllAsTransportClose(): void {
    for (const socket of this.deps.io.of("/").sockets.values()) socket.conn.close();
  }

  close(): void {
    clearInterval(this.sweepTimer);
    if (this.dropSlice) clearImmediate(this.dropSlice);
    this.expiry.close();
  }

  // ---- handshake ----

  /**
   * The handshake check. Synchronous (no promise, no microtask) when it needs nothing from Redis:
   * no per-address limit, the node in sync, the username cached; else a promise. Throws or
   * rejects with the GatehouseError to refuse with.
   */
  private admit(socket: GameSocket): void | Promise<void> {
    if (this.deps.handshakeLimiter) return consume(this.deps.handshakeLimiter, this.clientIp(socket)).then(() => this.admitToken(socket));
    return this.admitToken(socket);
  }

  private admitToken(socket: GameSocket): void | Promise<void> {
    const hs = socket.handshake;
    // Tokens in URLs end up in proxy and access logs: refuse them outright.
    if ("token" in hs.query || "access_token" in hs.query) throw new GatehouseError(ErrorCode.TOKEN_INVALID);
    const auth: unknown = hs.auth;
    const token = typeof auth === "object" && auth !== null ? (auth as Record<string, unknown>).token : undefined;
    const result = this.deps.check(token);
    return result instanceof Promise ? result.then((r) => this.admitChecked(socket, r)) : this.admitChecked(socket, result);
  }

  private admitChecked(socket: GameSocket, result: CheckResult): void | Promise<void> {
    if (!result.ok) throw new GatehouseError(result.code);
    const username = this.deps.usernameOf(result.claims.sub);
    return username instanceof Promise ? username.then((u) => this.seat(socket, result.claims, u)) : this.seat(socket, result.claims, username);
  }

  private seat(socket: GameSocket, claims: AccessClaims, username: string | null): void {
    if (username === null) throw new GatehouseError(ErrorCode.TOKEN_REVOKED);
    // Re-check: a revocation may have landed while the check or the lookup awaited the store.
    const late = this.deps.cache.coverage(claims, this.deps.clock.now());
    if (late) throw new GatehouseError(late.code);
    socket.data = { claims, username, connectedAt: this.deps.clock.now() };
  }

  private clientIp(socket: GameSocket): string {
    return this.deps.clientIp?.(socket.request) || socket.handshake.address;
  }

  // ---- live sockets ----

  private onConnection(socket: GameSocket): void {
    const { claims } = socket.data;
    // The upgrade request (and its socket, buffers, parser state) is only read during the
    // handshake (clientIp); socket.handshake keeps a copy of what socket.io needs. Not retained
    // per live socket: a measurable share of its memory (pitfall 8).
    (socket.conn as { request: IncomingMessage | null }).request = null;
    releaseUpgradeRequest(socket);
    forgetHandshakeToken(socket);
    this.deps.metrics.handshakes.inc({ result: "ok" });
    addTo(this.byUser, claims.sub, socket);
    addTo(this.bySession, claims.sid, socket);
    this.expiry.add(socket, claims.exp);
    this.deps.presence.add({
      socketId: socket.id,
      userId: claims.sub,
      username: socket.data.username,
      sessionId: claims.sid,
      nodeId: this.deps.nodeId,
      connectedAt: socket.data.connectedAt,
    });

    // Shared listeners (the emitter passes the socket as `this`): no closures per socket.
    socket.on(Events.AUTH_REFRESH, this.refreshListener);
    socket.on("disconnect", this.disconnectListener);
    for (const handler of this.connectionHandlers) handler(socket);
    // A revocation may have been applied between admit() and now. Never inline here: a host's own
    // "connection" handler registered after ours must still see the socket connected (and get
    // its "disconnect").
    this.dropCovered([socket], undefined, { inline: false });
  }

  /** Out of the indexes, timers and presence (sub and sid never change on a live socket: refresh keeps them). */
  private forget(socket: GameSocket): void {
    const { claims } = socket.data;
    removeFrom(this.byUser, claims.sub, socket);
    removeFrom(this.bySession, claims.sid, socket);
    this.expiry.remove(socket, claims.exp);
    this.deps.presence.remove(socket.id);
  }

  /** In-band token renewal: full check, same sub and sid, then the expiry timer moves. */
  private async onAuthRefresh(socket: GameSocket, payload: unknown, ack: unknown): Promise<void> {
    const reply = typeof ack === "function" ? (ack as (a: Ack<{ expiresAt: number }>) => void) : () => undefined;
    const parsed = AuthRefreshPayload.safeParse(payload);
    if (!parsed.success) return reply(fail(ErrorCode.VALIDATION_FAILED, describeInvalid(parsed.error, "payload")));
    const result = await this.deps.check(parsed.data.token);
    if (!result.ok) return reply(fail(result.code));
    if (!socket.connected) return; // dropped while the marks were read
    const current = socket.data.claims;
    if (result.claims.sub !== current.sub || result.claims.sid !== current.sid) return reply(fail(ErrorCode.TOKEN_INVALID));
    this.expiry.remove(socket, current.exp);
    socket.data.claims = result.claims;
    this.expiry.add(socket, result.claims.exp);
    reply({ ok: true, expiresAt: result.claims.exp * 1000 });
    // A revocation applied while the check awaited the store covers the new claims too.
    this.dropCovered([socket]);
  }

  /**
   * Queues the sockets a live mark covers for dropping. The drops run in slices of at most
   * DROP_SLICE_MS with setImmediate between them, shared by every event: a ban wave of many
   * events and one revoke-all are scheduled alike, and other sockets' messages get through
   * between slices. When nothing is queued or being dropped, drops start at once (up to
   * INLINE_DROP_MS per turn): a kick's few sockets go before the node writes its HTTP answer or
   * reads its next message (waiting for setImmediate cost a kick ~0.3-0.5 ms on its node).
   */
  private dropCovered(sockets: Iterable<GameSocket> | undefined, cause?: RevocationEvent, opts: { inline: boolean } = { inline: true }): void {
    if (!sockets) return;
    const now = this.deps.clock.now();
    const before = this.dropQueue.length;
    for (const socket of sockets) {
      if (socket.data.claims && this.deps.cache.coverage(socket.data.claims, now)) this.dropQueue.push({ socket, cause });
    }
    // While a slice runs it takes what is pushed meanwhile; a scheduled one will.
    if (this.dropQueue.length === before || this.dropSlice !== null || this.dropping) return;
    if (!opts.inline) {
      this.dropSlice = setImmediate(this.runDropSlice);
      return;
    }
    // Inline, but every inline drop until the next setImmediate shares one small budget: a ban
    // wave's events arrive many to one read of the feed, and dropping each event's sockets inline
    // in full stalled the node for ~100 ms.
    if (this.inlineUntil === null) {
      this.inlineUntil = performance.now() + INLINE_DROP_MS;
      setImmediate(() => (this.inlineUntil = null));
    }
    if (performance.now() < this.inlineUntil) this.runSlice(this.inlineUntil);
    else this.dropSlice = setImmediate(this.runDropSlice);
  }

  private readonly runDropSlice = (): void => {
    this.dropSlice = null;
    this.runSlice(performance.now() + DROP_SLICE_MS);
  };

  private runSlice(deadline: number): void {
    this.dropping = true;
    try {
      this.dropUntil(deadline);
    } finally {
      this.dropping = false;
    }
  }

  private dropUntil(deadline: number): void {
    const now = this.deps.clock.now();
    const q = this.dropQueue;
    let done = 0;
    while (this.dropHead < q.length) {
      const { socket, cause } = q[this.dropHead++]!;
      // Decided again at the drop: the reason is the one that holds now (an unban or a refresh may
      // have landed since it was queued), and a socket already gone costs nothing.
      if (!socket.data.revoked && socket.connected) {
        const covered = this.deps.cache.coverage(socket.data.claims, now);
        // The admin's own words go only to sockets dropped for this event's reason, not for an older mark.
        try {
          if (covered) this.drop(socket, covered.reason, cause?.note && cause.reason === covered.reason ? cause.note : undefined);
        } catch (err) {
          // A "disconnect" listener that throws (a host app's, a room's) must not leave the rest of
          // the queue connected: the socket is gone or marked revoked either way; go on.
          this.deps.log.error({ err }, "a disconnect handler failed while dropping a revoked socket");
        }
      }
      if ((++done & 3) === 0 && performance.now() >= deadline) break;
    }
    if (this.dropHead < q.length) {
      this.dropSlice = setImmediate(this.runDropSlice);
    } else {
      this.dropQueue = [];
      this.dropHead = 0;
    }
  }

  /** Tell the client why, then a server-side disconnect: socket.io clients do not auto-reconnect after it. */
  private drop(socket: GameSocket, reason: RevocationReason, note?: string): void {
    if (socket.data.revoked || !socket.connected) return;
    socket.data.revoked = true;
    this.deps.metrics.forcedDisconnects.inc({ reason });
    // session:revoked and the disconnect packet leave in one transport write, then the close, as a
    // plain disconnect's one packet does. engine.io flushes each packet on its own and sends the
    // next only after the write callback: the disconnect packet and the close waited a round of
    // the event loop each, meanwhile the client (told) closed first, and the node paid the
    // write-after-end error path (~7 % of a drop, and 1.3-1.4x plain's CPU per socket).
    const transport = socket.conn.transport as unknown as { writable: boolean };
    const writable = transport.writable;
    transport.writable = false; // buffered by engine.io, flushed with the disconnect packet
    try {
      socket.emit(Events.SESSION_REVOKED, { reason, message: revokedMessage(reason, note) });
    } finally {
      transport.writable = writable;
    }
    socket.disconnect(true);
  }
}

function fail(code: ErrorCode, message: string = errorMessage[code]): { ok: false; error: { code: ErrorCode; message: string } } {
  return { ok: false, error: { code, message } };
}

/**
 * engine.io (6.6) leaves an "error" listener named onUpgradeError on every websocket that
 * connected directly; its closure holds the upgrade request (IncomingMessage, headers, raw
 * headers, parser state) for the socket's whole life. The transport's own error listener stays,
 * so removing it changes nothing else. Polling clients that upgrade later never keep it.
 */
function releaseUpgradeRequest(socket: GameSocket): void {
  const ws = (socket.conn.transport as unknown as { socket?: { listeners?(e: string): Function[]; removeListener(e: string, f: Function): void } }).socket;
  for (const f of ws?.listeners?.("error") ?? []) if (f.name === "onUpgradeError") ws!.removeListener("error", f);
}

/**
 * The access token a handshake carried (`handshake.auth.token`, ~350 bytes) is read once, by
 * admit(); the checked claims live in socket.data and auth:refresh replaces them, so the string
 * kept for the socket's whole life was only stale token material and a third of what a socket cost
 * beyond plain socket.io. The client's other `auth` fields stay for the host app.
 */
function forgetHandshakeToken(socket: GameSocket): void {
  const auth: unknown = socket.handshake.auth;
  if (typeof auth !== "object" || auth === null || !("token" in auth)) return;
  const { token: _token, ...rest } = auth as Record<string, unknown>;
  socket.handshake.auth = rest;
}
