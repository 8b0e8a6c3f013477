/** /admin/* (mounted at /admin): cluster-wide player view, kick/ban/revoke, audit. Rights re-checked against the store on every call. */
import { Router, type Request } from "express";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { AdminReasonBody, AuditQuery, BanBody, GUEST_PREFIX, IdParam, SessionIdParam, UsersQuery, type AuditEntry, type UserView } from "../../shared/protocol";
import { banView, isBanned } from "../auth/accounts";
import { newId } from "../auth/tokens";
import type { LiveTokenCheck } from "../auth/check";
import type { Clock } from "../clock";
import { onlinePlayers, type Presence } from "../realtime/presence";
import type { Revocations } from "../revocation/revocations";
import type { Store, UserRecord } from "../store/store";
import { requireAdmin } from "./auth-middleware";
import { parse } from "./validate";

export interface AdminRoutesDeps {
  check: LiveTokenCheck;
  store: Store;
  presence: Presence;
  revocations: Revocations;
  clock: Clock;
}

export function adminRoutes(d: AdminRoutesDeps): Router {
  const r = Router();
  // A request refused here never reaches a route: label it for /metrics rather than "unmatched".
  r.use((_req, res, next) => {
    res.locals.metricsRoute = "/admin/*";
    next();
  });
  r.use(...requireAdmin(d.check, d.store));

  const audit = async (req: Request, action: string, target?: string, detail?: Record<string, unknown>) => {
    const admin = req.admin!;
    const entry: AuditEntry = {
      id: newId(),
      at: new Date(d.clock.now()).toISOString(),
      actorId: admin.id,
      actorName: admin.username,
      action,
      ...(target !== undefined ? { target } : {}),
      ...(detail !== undefined ? { detail } : {}),
    };
    await d.store.appendAudit(entry);
  };

  const existingUser = async (req: Request) => {
    const userId = parse(IdParam, req.params.userId);
    const user = await d.store.getUser(userId);
    if (!user) throw new GatehouseError(ErrorCode.NOT_FOUND);
    return user;
  };

  // The dashboard has these pushed over its socket (admin-watch.ts); this is for HTTP users.
  r.get("/players", async (_req, res) => {
    res.json(onlinePlayers(await d.presence.list()));
  });

  r.get("/users", async (req, res) => {
    const { query, limit } = parse(UsersQuery, req.query);
    const q = query.toLowerCase();
    const users = new Map<string, UserRecord>();
    for (const u of await d.store.searchUsers(q, limit)) users.set(u.id, u);
    // Guests are not in the store's search (their accounts expire with their sessions): the online
    // ones come from presence. An offline guest can only come back by refresh, and kick/ban need it online.
    if (GUEST_PREFIX.startsWith(q) || q.startsWith(GUEST_PREFIX)) {
      const guests = new Map<string, string>();
      for (const p of await d.presence.list()) if (p.username.toLowerCase().startsWith(q) && !users.has(p.userId)) guests.set(p.userId, p.username.toLowerCase());
      // Read only the records that can make the page (thousands of guests may be online).
      const first = [...guests].sort((a, b) => cmp(a[1], b[1])).slice(0, limit);
      for (const u of await Promise.all(first.map(([id]) => d.store.getUser(id)))) if (u) users.set(u.id, u);
    }
    const page = [...users.values()].sort((a, b) => cmp(a.username.toLowerCase(), b.username.toLowerCase())).slice(0, limit);
    const now = d.clock.now();
    const views = await Promise.all(
      page.map(async (u): Promise<UserView> => ({
        userId: u.id,
        username: u.username,
        role: u.role,
        online: (await d.presence.sessionsOnline(u.id)).size > 0,
        ban: isBanned(u, now) ? banView(u.ban) : null,
      })),
    );
    res.json(views);
  });

  r.post("/users/:userId/kick", async (req, res) => {
    const user = await existingUser(req);
    const body = parse(AdminReasonBody, req.body ?? {});
    const e = await d.revocations.revoke({ kind: "user", userId: user.id, reason: "kicked", ...noteOf(body) });
    await audit(req, "kick", user.id, { username: user.username, ...(body.reason ? { reason: body.reason } : {}) });
    res.status(202).json({ seq: e.seq });
  });

  r.post("/users/:userId/ban", async (req, res) => {
    const user = await existingUser(req);
    const body = parse(BanBody, req.body ?? {});
    const until = body.until ? Date.parse(body.until) : null;
    if (until !== null && until <= d.clock.now()) throw new GatehouseError(ErrorCode.VALIDATION_FAILED, "Invalid until: must be in the future");
    const e = await d.revocations.revoke({
      kind: "user",
      userId: user.id,
      reason: "banned",
      ban: { until, ...(body.reason ? { reason: body.reason } : {}) },
      ...noteOf(body),
    });
    await audit(req, "ban", user.id, { username: user.username, until: body.until ?? null, ...(body.reason ? { reason: body.reason } : {}) });
    res.status(202).json({ seq: e.seq });
  });

  r.delete("/users/:userId/ban", async (req, res) => {
    const user = await existingUser(req);
    await d.revocations.revoke({ kind: "unban", userId: user.id, reason: "unbanned" });
    await audit(req, "unban", user.id, { username: user.username });
    res.status(204).end();
  });

  r.post("/sessions/:sessionId/revoke", async (req, res) => {
    // not a session id at all: no such session (the same answer as someone else's)
    const sessionId = SessionIdParam.safeParse(req.params.sessionId).data;
    if (sessionId === undefined) throw new GatehouseError(ErrorCode.NOT_FOUND);
    const body = parse(AdminReasonBody, req.body ?? {});
    const session = await d.store.getSession(sessionId);
    if (!session) throw new GatehouseError(ErrorCode.NOT_FOUND);
    const e = await d.revocations.revoke({ kind: "session", userId: session.userId, sessionId, reason: "session_revoked", ...noteOf(body) });
    await audit(req, "revoke_session", sessionId, { userId: session.userId, ...(body.reason ? { reason: body.reason } : {}) });
    res.status(202).json({ seq: e.seq });
  });

  r.post("/revoke-all", async (req, res) => {
    const e = await d.revocations.revoke({ kind: "global", reason: "revoked_all" });
    await audit(req, "revoke_all");
    res.status(202).json({ seq: e.seq });
  });

  r.get("/audit", async (req, res) => {
    const { limit } = parse(AuditQuery, req.query);
    res.json(await d.store.listAudit(limit));
  });

  return r;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The admin's reason, passed on to the dropped players' `session:revoked` message. */
function noteOf(body: { reason?: string | undefined }): { note?: string } {
  const note = body.reason?.trim();
  return note ? { note } : {};
}
