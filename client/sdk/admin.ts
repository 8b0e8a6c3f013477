/** `client.admin.*`: the admin routes over the client's authenticated `request()`. */
import type { AuditEntry, OnlinePlayer, UserView } from "../../shared/protocol";

/** What the admin API needs from the client: an authenticated JSON request. */
export interface AuthedRequester {
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
}

/** `client.admin.*`: the admin routes. A non-admin gets FORBIDDEN (403). */
export class AdminApi {
  constructor(private readonly client: AuthedRequester) {}

  /** Players online across the cluster, with their sessions and nodes. */
  players(): Promise<OnlinePlayer[]> {
    return this.client.request<OnlinePlayer[]>("GET", "/admin/players");
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
