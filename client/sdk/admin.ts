/** `client.admin.*`: the admin routes over the client's authenticated `request()`, and the online list pushed over its socket. */
import { AdminEvents, type AuditEntry, type OnlinePlayer, type UserView } from "../../shared/protocol";
import type { GameSocket } from "./socket";

/** What the admin API needs from the client: an authenticated JSON request, and its socket for pushes. */
export interface AuthedRequester {
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
  connect(): Promise<GameSocket>;
  readonly socket: GameSocket | undefined;
  send<T extends object = object>(event: string, payload?: unknown): Promise<T>;
  on(event: "connect", listener: () => void): () => void;
}

/** `client.admin.*`: the admin routes. A non-admin gets FORBIDDEN (403). */
export class AdminApi {
  constructor(private readonly client: AuthedRequester) {}

  /** Players online across the cluster, with their sessions and nodes (once; `watchPlayers` keeps it current). */
  players(): Promise<OnlinePlayer[]> {
    return this.client.request<OnlinePlayer[]>("GET", "/admin/players");
  }

  /**
   * The same list pushed over this client's socket (`admin:watch`, docs/api.md): now, then again
   * whenever a player connects or leaves on any node (a few pushes a second at most), no polling.
   * Connects the socket if needed, and watches again after every reconnection (`onError` hears if
   * that is refused). Rejects with FORBIDDEN unless the server's user record is an admin's.
   * The returned function stops watching.
   */
  async watchPlayers(onPlayers: (players: OnlinePlayer[]) => void, onError?: (err: unknown) => void): Promise<() => void> {
    const listener = (players: OnlinePlayer[]) => onPlayers(players);
    let bound: GameSocket | undefined;
    // Listen on the client's socket of the moment (a new login gets a new one).
    const bind = () => {
      const s = this.client.socket;
      if (s === bound) return;
      bound?.off(AdminEvents.PLAYERS, listener);
      s?.on(AdminEvents.PLAYERS, listener);
      bound = s;
    };
    let offConnect = () => {};
    const stop = () => {
      offConnect();
      bound?.off(AdminEvents.PLAYERS, listener);
      bound = undefined;
    };
    try {
      await this.client.connect();
      bind();
      // The server forgets a watch with its connection: a reconnection asks again.
      offConnect = this.client.on("connect", () => {
        bind();
        this.client.send(AdminEvents.WATCH, {}).catch((err: unknown) => onError?.(err));
      });
      await this.client.send(AdminEvents.WATCH, {});
    } catch (err) {
      stop();
      throw err;
    }
    return stop;
  }

  /**
   * Users whose username starts with `query` (case-insensitive), online or not, with their ban
   * (limit 1-100, default 20). Registered accounts, plus guests while they are online.
   */
  users(query = "", limit = 20): Promise<UserView[]> {
    const qs = new URLSearchParams({ query, limit: String(limit) });
    return this.client.request<UserView[]>("GET", `/admin/users?${qs.toString()}`);
  }

  /** Revokes every session of the user (reason `kicked`); they may log in again. */
  async kick(userId: string, reason?: string): Promise<void> {
    await this.client.request("POST", `/admin/users/${encodeURIComponent(userId)}/kick`, reason ? { reason } : {});
  }

  /** Like kick (reason `banned`), and login/refresh refused until unbanned or `until`. */
  async ban(userId: string, opts: { reason?: string; until?: Date | string } = {}): Promise<void> {
    const until = opts.until instanceof Date ? opts.until.toISOString() : opts.until;
    await this.client.request("POST", `/admin/users/${encodeURIComponent(userId)}/ban`, {
      ...(opts.reason ? { reason: opts.reason } : {}),
      ...(until ? { until } : {}),
    });
  }

  async unban(userId: string): Promise<void> {
    await this.client.request("DELETE", `/admin/users/${encodeURIComponent(userId)}/ban`);
  }

  /** Revokes one session (reason `session_revoked`). */
  async revokeSession(sessionId: string, reason?: string): Promise<void> {
    await this.client.request("POST", `/admin/sessions/${encodeURIComponent(sessionId)}/revoke`, reason ? { reason } : {});
  }

  /** Every token issued before now dies, this admin's included (reason `revoked_all`). */
  async revokeAll(): Promise<void> {
    await this.client.request("POST", "/admin/revoke-all", {});
  }

  /** Newest admin actions first (limit 1-500, default 50). */
  audit(limit = 50): Promise<AuditEntry[]> {
    return this.client.request<AuditEntry[]>("GET", `/admin/audit?limit=${encodeURIComponent(String(limit))}`);
  }
}
