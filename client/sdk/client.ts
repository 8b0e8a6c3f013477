/**
 * The Gatehouse client SDK, for Node (>= 20) and the browser: only `fetch` and
 * socket.io-client, no Node-only imports.
 *
 *   const client = new GatehouseClient({ baseUrl: "http://127.0.0.1:3000" });
 *   await client.guest();
 *   const socket = await client.connect();
 *   client.on("revoked", ({ reason, message }) => ...);
 *   await client.joinRoom("lobby");
 *
 * What it does for you: keeps the access token fresh (refresh at ~80% of its
 * lifetime, then `auth:refresh` on the live socket: no reconnect), shares one
 * in-flight refresh between concurrent callers (a second concurrent rotation
 * would present an already-rotated refresh token and revoke the session),
 * hands the freshest token to every socket.io (re)connection, stops everything
 * on `session:revoked` and reports why, and adopts the new pair after its own
 * password change. See docs/client.md.
 */
import type { PublicUser, TokenPair } from "../../shared/claims";
import { ErrorCode } from "../../shared/errors";
import { Events, RevocationReason, TicTacToeEvents, reasonText, type SessionRevokedPayload, type SessionView } from "../../shared/protocol";
import { TypedEmitter } from "../emitter";
import { AdminApi } from "./admin";
import { ClientErrorCode, GatehouseClientError } from "./errors";
import { httpJson } from "./http";
import { ConnectWaiters, emitWithAck, openSocket, type GameSocket, type JoinedRoom, type SocketIoOptions } from "./socket";
import { memoryStorage, type TokenStorage } from "./storage";
import { decodeAccessToken, unref, withLock } from "./tokens";

/** Why the session ended, as surfaced by the `revoked` event. */
export interface RevokedEvent {
  reason: RevocationReason;
  /** human text (the server's, else `reasonText[reason]`) */
  message: string;
}

export type ClientEvents = {
  /** The session is over (kicked, banned, signed out elsewhere...). Everything has stopped; nothing reconnects. */
  revoked: (e: RevokedEvent) => void;
  /** A failure nobody awaited: a refused (re)connection, a failed background refresh or in-band renewal. */
  error: (err: GatehouseClientError) => void;
  /** The token pair changed: login, refresh, password change (a pair), logout or revocation (null). */
  session: (pair: TokenPair | null) => void;
  connect: () => void;
  disconnect: (reason: string) => void;
};

export interface GatehouseClientOptions {
  /** e.g. "http://127.0.0.1:3000"; in a page, `location.origin` */
  baseUrl: string;
  /** where the pair lives (default: memory). Pages: `webStorage(sessionStorage)`. */
  storage?: TokenStorage;
  /** device name sent with login / register / guest when the call gives none */
  device?: string;
  /** fraction of the access-token lifetime after which it is refreshed (default 0.8) */
  refreshAt?: number;
  /** per HTTP request (default 10 000 ms) */
  requestTimeoutMs?: number;
  /** per socket acknowledgement (default 5 000 ms) */
  ackTimeoutMs?: number;
  /** how long `connect()` waits through transient failures before rejecting (default 10 000 ms) */
  connectTimeoutMs?: number;
  /** extra socket.io options (transports and auth are the SDK's) */
  socketOptions?: SocketIoOptions;
  /** injectable for tests and other runtimes (default: global fetch) */
  fetch?: typeof fetch;
  /** injectable clock, epoch ms (default Date.now) */
  now?: () => number;
}

/** A password change of this client in flight. */
interface PasswordChange {
  /** the `password_changed` revocation that arrived on the old socket meanwhile */
  revocation?: RevokedEvent;
  /** settles when the change has finished, either way */
  done: Promise<void>;
}

/** Refresh failures after which the session cannot continue. */
const TERMINAL_REFRESH: Partial<Record<ClientErrorCode, RevocationReason>> = {
  [ErrorCode.REFRESH_REUSED]: RevocationReason.REFRESH_REUSED,
  [ErrorCode.USER_BANNED]: RevocationReason.BANNED,
  [ErrorCode.REFRESH_INVALID]: RevocationReason.SESSION_REVOKED,
};
const KNOWN_REASONS: ReadonlySet<string> = new Set(Object.values(RevocationReason));
/** Consecutive token_expired recoveries tolerated before giving up (a badly skewed clock would loop). */
const MAX_EXPIRY_RECOVERIES = 2;

/** Longest delay setTimeout honours (2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class GatehouseClient extends TypedEmitter<ClientEvents> {
  readonly baseUrl: string;
  /** Admin routes (the server re-checks the role on every call). */
  readonly admin: AdminApi;

  private readonly storage: TokenStorage;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;
  private readonly opts: Required<Pick<GatehouseClientOptions, "refreshAt" | "requestTimeoutMs" | "ackTimeoutMs" | "connectTimeoutMs">> &
    Pick<GatehouseClientOptions, "device" | "socketOptions">;

  private pair: TokenPair | null = null;
  /** access-token exp, epoch ms (server clock, as issued) */
  private expMs = 0;
  /** when the current token should be refreshed, epoch ms (local clock) */
  private refreshDueAt = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private inflight: Promise<TokenPair> | null = null;
  private sock: GameSocket | undefined;
  private handshakeToken: string | undefined;
  private readonly waiters = new ConnectWaiters();
  private retryingExpired = false;
  private expiryRecoveries = 0;
  /** set while this client changes its own password: its own `password_changed` is not a revocation */
  private passwordChange: PasswordChange | null = null;

  constructor(options: GatehouseClientOptions) {
    super();
    if (!options || typeof options.baseUrl !== "string" || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError("GatehouseClient: baseUrl must be an absolute http(s) URL, e.g. http://127.0.0.1:3000");
    }
    const refreshAt = options.refreshAt ?? 0.8;
    if (!(refreshAt > 0 && refreshAt < 1)) throw new TypeError("GatehouseClient: refreshAt must be between 0 and 1 (exclusive)");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.storage = options.storage ?? memoryStorage();
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.now = options.now ?? Date.now;
    this.opts = {
      refreshAt,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      ackTimeoutMs: options.ackTimeoutMs ?? 5_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      device: options.device,
      socketOptions: options.socketOptions,
    };
    this.admin = new AdminApi(this);
    // Resume a stored session (a page reload). If it is dead, the first call says so.
    const stored = this.safeLoad();
    if (stored) this.setPair(stored, { persist: false });
  }

  // ------------------------------------------------------------ state

  /** The signed-in user, or null. */
  get user(): PublicUser | null {
    return this.pair?.user ?? null;
  }
  get sessionId(): string | null {
    return this.pair?.sessionId ?? null;
  }
  get isLoggedIn(): boolean {
    return this.pair !== null;
  }
  /** The current access token (for your own HTTP calls); prefer `request()`. */
  get accessToken(): string | null {
    return this.pair?.accessToken ?? null;
  }
  /** The socket of the last `connect()`, if any. */
  get socket(): GameSocket | undefined {
    return this.sock;
  }
  /** True while a background refresh is scheduled (false once the session ended). */
  get refreshPending(): boolean {
    return this.refreshTimer !== undefined;
  }

  // ------------------------------------------------------------ accounts

  register(username: string, password: string, device?: string): Promise<TokenPair> {
    return this.begin(this.http<TokenPair>("POST", "/auth/register", { body: { username, password, device: device ?? this.opts.device } }));
  }

  login(username: string, password: string, device?: string): Promise<TokenPair> {
    return this.begin(this.http<TokenPair>("POST", "/auth/login", { body: { username, password, device: device ?? this.opts.device } }));
  }

  guest(device?: string): Promise<TokenPair> {
    return this.begin(this.http<TokenPair>("POST", "/auth/guest", { body: { device: device ?? this.opts.device } }));
  }

  /** Ends this session on the server; local state is cleared even if the server cannot be reached. */
  logout(): Promise<void> {
    return this.signOut("/auth/logout");
  }

  /** Ends every session of this user (every device). */
  logoutAll(): Promise<void> {
    return this.signOut("/auth/logout-all");
  }

  /**
   * The server ends EVERY session of the user, this one included, and answers
   * a fresh pair: the client adopts it and reconnects its socket with it. Its
   * own `password_changed` revocation is not surfaced as `revoked`.
   */
  async changePassword(oldPassword: string, newPassword: string): Promise<TokenPair> {
    // Any due refresh happens now, before the change: while the change is in flight,
    // refreshes wait for it (they would present the refresh token it is about to kill).
    const token = await this.freshAccessToken();
    let finished!: () => void;
    const op: PasswordChange = { done: new Promise<void>((r) => (finished = r)) };
    this.passwordChange = op;
    try {
      const pair = await this.http<TokenPair>("POST", "/auth/password", { body: { oldPassword, newPassword }, token });
      this.setPair(pair);
      const s = this.sock;
      if (s) {
        // A new handshake on the new session. The old connection closes before its
        // `password_changed` can arrive, or that already arrived and was held back
        // (onSessionRevoked).
        s.disconnect();
        s.connect();
      }
      return pair;
    } catch (err) {
      // The server did revoke us but the reply was lost: that revocation is real after all.
      if (op.revocation) this.end(op.revocation);
      throw err;
    } finally {
      if (this.passwordChange === op) this.passwordChange = null;
      finished();
    }
  }

  me(): Promise<PublicUser> {
    return this.request<PublicUser>("GET", "/me");
  }

  /** My sessions (devices), newest first. */
  sessions(): Promise<SessionView[]> {
    return this.request<SessionView[]>("GET", "/sessions");
  }

  /** Signs out one of my other devices. */
  async revokeSession(sessionId: string): Promise<void> {
    await this.request<void>("DELETE", `/sessions/${encodeURIComponent(sessionId)}`);
  }

  /**
   * An authenticated JSON request (Bearer), with the token refreshed first when
   * due and once more if the server answers TOKEN_EXPIRED.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = await this.freshAccessToken();
    try {
      return await this.http<T>(method, path, { body, token });
    } catch (err) {
      if (!(err instanceof GatehouseClientError && err.code === ErrorCode.TOKEN_EXPIRED)) throw err;
      const next = await this.refresh();
      return this.http<T>(method, path, { body, token: next.accessToken });
    }
  }

  // ------------------------------------------------------------ tokens

  /**
   * Rotates the refresh token now and pushes the new access token to the live
   * socket. Concurrent callers share one request (single-flight).
   */
  refresh(): Promise<TokenPair> {
    this.inflight ??= this.runRefresh().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async runRefresh(): Promise<TokenPair> {
    // Never during our own password change: it is about to kill this refresh token
    // (a refresh failing with REFRESH_INVALID would end the session it replaces).
    if (this.passwordChange) {
      const before = this.pair;
      await this.passwordChange.done;
      // The change brought a fresh pair: nothing left to refresh.
      if (this.pair && this.pair !== before) return this.pair;
    }
    const pair = this.requirePair();
    let next: TokenPair;
    try {
      next = await withLock(`gatehouse-refresh:${pair.sessionId}`, async () => {
        // Another tab sharing this storage may have rotated while we waited for the lock.
        const stored = this.safeLoad();
        if (stored && stored.sessionId === pair.sessionId && stored.refreshToken !== pair.refreshToken) return stored;
        return this.http<TokenPair>("POST", "/auth/refresh", { body: { refreshToken: pair.refreshToken } });
      });
    } catch (err) {
      // Replaced meanwhile (password change, new login): that failure is about a pair we no longer hold.
      if (this.pair && this.pair !== pair) return this.pair;
      throw err;
    }
    if (this.pair !== pair) return this.requirePair();
    this.setPair(next);
    await this.pushToSocket(next.accessToken);
    return next;
  }

  /** The access token, refreshed first if it is due (or past due: timers starve in background tabs). */
  private async freshAccessToken(): Promise<string> {
    const pair = this.requirePair();
    if (this.now() < this.refreshDueAt) return pair.accessToken;
    return (await this.refresh()).accessToken;
  }

  private setPair(pair: TokenPair | null, opts: { persist?: boolean } = {}): void {
    this.pair = pair;
    if (opts.persist !== false) this.storage.save(pair);
    this.clearRefreshTimer();
    if (pair) {
      const claims = decodeAccessToken(pair.accessToken);
      const now = this.now();
      const ttlMs = Math.max(1, pair.expiresIn) * 1000;
      this.expMs = claims ? claims.exp * 1000 : now + ttlMs;
      // Refresh when (1 - refreshAt) of the lifetime is left before exp, and never
      // later than refreshAt x lifetime after receipt (a clock behind the server's).
      // exp has one-second resolution, so exp is the better guide for short lifetimes.
      const byExp = this.expMs - (1 - this.opts.refreshAt) * ttlMs;
      const byAge = now + this.opts.refreshAt * ttlMs;
      this.refreshDueAt = Math.min(byExp, byAge);
      // A floor, so a clock ahead of the server's cannot spin refreshes.
      const delay = Math.max(this.refreshDueAt - now, Math.min(1000, ttlMs / 4));
      this.scheduleRefresh(delay);
    } else {
      this.expMs = 0;
      this.refreshDueAt = 0;
    }
    this.emit("session", pair);
  }

  private scheduleRefresh(delayMs: number): void {
    this.clearRefreshTimer();
    // setTimeout fires after 1 ms for a delay above 2^31-1 ms (~24.8 days): wait in capped steps.
    if (delayMs > MAX_TIMER_MS) {
      this.refreshTimer = setTimeout(() => this.scheduleRefresh(delayMs - MAX_TIMER_MS), MAX_TIMER_MS);
      unref(this.refreshTimer);
      return;
    }
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      const pair = this.pair;
      this.refresh().catch((err: unknown) => this.onRefreshFailure(err, pair));
    }, delayMs);
    unref(this.refreshTimer);
  }

  private clearRefreshTimer(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private onRefreshFailure(err: unknown, pair: TokenPair | null): void {
    if (!this.pair || this.pair !== pair) return;
    const e = err instanceof GatehouseClientError ? err : new GatehouseClientError(ClientErrorCode.NETWORK, String(err));
    const reason = TERMINAL_REFRESH[e.code];
    if (reason) return this.end({ reason, message: reasonText[reason] });
    this.emit("error", e);
    // Transient (network, 429, 503): try again, sooner as exp nears.
    const left = this.expMs - this.now();
    this.scheduleRefresh(Math.min(5000, Math.max(500, left / 3)));
  }

  /** In-band renewal: the live socket keeps running on the new token, no reconnect. */
  private async pushToSocket(token: string): Promise<void> {
    const s = this.sock;
    if (!s?.connected) return;
    try {
      const ack = await s.timeout(this.opts.ackTimeoutMs).emitWithAck(Events.AUTH_REFRESH, { token });
      if (ack.ok) {
        this.handshakeToken = token;
        this.expiryRecoveries = 0;
      } else if (this.pair?.accessToken === token) {
        this.emit("error", GatehouseClientError.fromWire(ack.error));
      }
    } catch {
      if (s.connected) this.emit("error", new GatehouseClientError(ClientErrorCode.TIMEOUT, "The server did not acknowledge the token renewal."));
    }
  }

  // ------------------------------------------------------------ socket

  /**
   * Connects (or returns the connected) socket.io socket: websocket transport,
   * and `auth` as a function, so every reconnection hands over the freshest
   * token. Rejects with a GatehouseClientError when the server refuses the
   * handshake (its code), or after `connectTimeoutMs` of transient failures
   * (the socket keeps retrying; listen to `connect`).
   */
  connect(): Promise<GameSocket> {
    if (!this.pair) return Promise.reject(new GatehouseClientError(ErrorCode.TOKEN_MISSING, "Not signed in."));
    let s = this.sock;
    if (!s) s = this.sock = this.createSocket();
    if (s.connected) return Promise.resolve(s);
    if (!s.active) s.connect();
    return this.waiters.wait(this.opts.connectTimeoutMs);
  }

  private createSocket(): GameSocket {
    const socket = openSocket(this.baseUrl, this.opts.socketOptions, (cb) => {
      this.freshAccessToken().then(
        (token) => {
          this.handshakeToken = token;
          cb({ token });
        },
        (err: unknown) => {
          // A refresh that failed for good ends the session here too; otherwise
          // hand over what we have and let the server refuse with its code.
          this.onRefreshFailure(err, this.pair);
          cb({ token: this.pair?.accessToken ?? "" });
        },
      );
    });

    socket.on("connect", () => {
      this.retryingExpired = false;
      // A refresh landed while the handshake was in flight: renew in band at once.
      if (this.pair && this.handshakeToken !== this.pair.accessToken) void this.pushToSocket(this.pair.accessToken);
      this.waiters.settle({ socket });
      this.emit("connect");
    });
    socket.on("disconnect", (reason) => this.emit("disconnect", reason));
    socket.on("connect_error", (err: Error & { data?: unknown }) => {
      const e = GatehouseClientError.fromConnectError(err);
      // Our token expired on the way (a sleeping laptop): refresh once and retry.
      if (e.code === ErrorCode.TOKEN_EXPIRED && !socket.active && this.pair && !this.retryingExpired) {
        this.retryingExpired = true;
        this.refresh().then(
          () => {
            if (this.sock === socket) socket.connect();
          },
          (re: unknown) => {
            const failure = re instanceof GatehouseClientError ? re : e;
            this.waiters.settle({ error: failure });
            this.onRefreshFailure(failure, this.pair);
          },
        );
        return;
      }
      if (!socket.active) this.waiters.settle({ error: e });
      this.emit("error", e);
    });
    socket.on(Events.SESSION_REVOKED, (p) => this.onSessionRevoked(socket, p));
    return socket;
  }

  private onSessionRevoked(socket: GameSocket, payload: unknown): void {
    const p = (typeof payload === "object" && payload !== null ? payload : {}) as Partial<SessionRevokedPayload>;
    const reason: RevocationReason = typeof p.reason === "string" && KNOWN_REASONS.has(p.reason) ? p.reason : RevocationReason.SESSION_REVOKED;
    const event: RevokedEvent = { reason, message: typeof p.message === "string" && p.message ? p.message : reasonText[reason] };
    if (reason === RevocationReason.PASSWORD_CHANGED && this.passwordChange) {
      // Our own password change: the new pair is on its way in the HTTP reply.
      this.passwordChange.revocation = event;
      return;
    }
    if (reason === RevocationReason.TOKEN_EXPIRED && this.pair && this.expiryRecoveries < MAX_EXPIRY_RECOVERIES) {
      // The socket outlived its token (starved timers): the session may well be alive.
      this.expiryRecoveries++;
      const gone = socket.connected ? new Promise<void>((r) => socket.once("disconnect", () => r())) : Promise.resolve();
      Promise.all([this.refresh(), gone]).then(
        () => {
          if (this.sock === socket && this.pair) socket.connect();
        },
        () => this.end(event),
      );
      return;
    }
    this.end(event);
  }

  /** The session is over: stop timers, drop the socket (no reconnect), forget the pair, tell the app. */
  private end(event: RevokedEvent): void {
    if (!this.pair) return;
    this.teardown(new GatehouseClientError(ErrorCode.SESSION_REVOKED, event.message));
    this.setPair(null);
    this.emit("revoked", event);
  }

  /** Stops the refresh timer and the socket; keeps the pair. */
  private teardown(reason = new GatehouseClientError(ErrorCode.TOKEN_MISSING, "The client was closed.")): void {
    this.clearRefreshTimer();
    const s = this.sock;
    this.sock = undefined;
    s?.disconnect();
    this.waiters.settle({ error: reason });
  }

  /**
   * Drops the session locally without telling the server: for a session known
   * to be dead already (after revoke-all, a refused handshake), where a logout
   * call could only fail.
   */
  forget(): void {
    this.teardown();
    this.setPair(null);
  }

  /**
   * Stops timers and the socket but keeps the session (stored pair): for
   * process shutdown, bots, tests. `connect()` starts again.
   */
  close(): void {
    this.teardown();
  }

  // ------------------------------------------------------------ game

  /** Joins (or switches to) a room; resolves with the room and your player. */
  joinRoom(roomId: string): Promise<JoinedRoom> {
    return this.ack<JoinedRoom>(Events.ROOM_JOIN, { roomId });
  }

  async leaveRoom(): Promise<void> {
    await this.ack(Events.ROOM_LEAVE, {});
  }

  /**
   * Asks to move toward (x, y); the server clamps to the arena and caps the
   * speed, and `state` carries the authoritative position. Fire-and-forget
   * (volatile: dropped rather than queued while disconnected). Returns whether it was sent.
   */
  move(x: number, y: number): boolean {
    const s = this.sock;
    if (!s?.connected) return false;
    s.volatile.emit(Events.MOVE, { x, y });
    return true;
  }

  /** Sends a chat line to the room (1-200 chars; rate limited: RATE_LIMITED). */
  async chat(text: string): Promise<void> {
    await this.ack(Events.CHAT_SEND, { text });
  }

  /**
   * Tic-tac-toe: waits for an opponent (any node). `{status: "matched"}` if one
   * was waiting; else `"waiting"`, and `ttt:matched` arrives when someone comes.
   * Then `ttt:state` (the board) and `ttt:you` (your mark, your turn) after every change.
   */
  queueTicTacToe(): Promise<{ status: "waiting" | "matched"; roomId?: string }> {
    return this.ack(TicTacToeEvents.QUEUE, {});
  }

  /** Plays a cell (0-8, row by row); refused (FORBIDDEN / VALIDATION_FAILED) out of turn or on a taken cell. */
  async playTicTacToe(cell: number): Promise<void> {
    await this.ack(TicTacToeEvents.PLAY, { cell });
  }

  /** Leaves the queue, or the game (a forfeit while it runs). */
  async leaveTicTacToe(): Promise<void> {
    await this.ack(TicTacToeEvents.LEAVE, {});
  }

  /**
   * Any room message with an ack (your own room types, docs/rooms.md): resolves
   * with the ack's fields, rejects with a GatehouseClientError carrying its code.
   */
  send<T extends object = object>(event: string, payload: unknown = {}): Promise<T> {
    return this.ack<T>(event, payload);
  }

  private ack<T extends object>(event: string, payload: unknown): Promise<T> {
    return emitWithAck<T>(this.sock, event, payload, this.opts.ackTimeoutMs);
  }

  // ------------------------------------------------------------ plumbing

  private async begin(call: Promise<TokenPair>): Promise<TokenPair> {
    const pair = await call;
    // A new identity: the old socket (if any) belonged to the previous session.
    this.teardown();
    this.expiryRecoveries = 0;
    this.setPair(pair);
    return pair;
  }

  private async signOut(path: string): Promise<void> {
    if (!this.pair) return;
    // Our own socket goes first, so the revocation it would receive is not surfaced.
    this.teardown();
    try {
      await this.request<void>("POST", path);
    } catch (err) {
      // Already dead on the server (401/403): signed out all the same.
      if (!(err instanceof GatehouseClientError && (err.status === 401 || err.status === 403))) {
        this.setPair(null);
        throw err;
      }
    }
    this.setPair(null);
  }

  private requirePair(): TokenPair {
    if (!this.pair) throw new GatehouseClientError(ErrorCode.TOKEN_MISSING, "Not signed in.");
    return this.pair;
  }

  private safeLoad(): TokenPair | null {
    try {
      return this.storage.load();
    } catch {
      return null;
    }
  }

  /** Plain JSON over fetch; errors become GatehouseClientError. */
  private http<T>(method: string, path: string, opts: { body?: unknown; token?: string } = {}): Promise<T> {
    return httpJson<T>({ fetch: this.fetchFn, baseUrl: this.baseUrl, timeoutMs: this.opts.requestTimeoutMs }, method, path, opts);
  }
}
