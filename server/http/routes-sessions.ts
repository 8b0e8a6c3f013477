/** GET /me, GET /sessions and DELETE /sessions/:id: the caller's own account and devices (sign out the stolen phone). */
import { Router } from "express";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { SessionIdParam, type SessionView } from "../../shared/protocol";
import type { LiveTokenCheck } from "../auth/check";
import type { UserDirectory } from "../auth/user-directory";
import type { Clock } from "../clock";
import type { Presence } from "../realtime/presence";
import type { Revocations } from "../revocation/revocations";
import type { Store } from "../store/store";
import { authenticated } from "./auth-middleware";
import { consume, type RateLimits } from "./rate-limits";
import { sendJson } from "./send-json";

export interface SessionRoutesDeps {
  check: LiveTokenCheck;
  store: Store;
  users: UserDirectory;
  presence: Presence;
  revocations: Revocations;
  clock: Clock;
  limits: Pick<RateLimits, "sessionsUser">;
}

/**
 * Mounted at "/": it touches only its own paths. No JSON parser (no route here takes a body), the
 * query-token refusal is in the Bearer check, and each route is one express layer (`authenticated`),
 * so the hot path is one flat router; the caller appends the error handler for these paths.
 */
export function sessionRoutes(d: SessionRoutesDeps): Router {
  const r = Router();

  // Memory only (claims + cached username): the cheapest authenticated route, answered without a
  // promise once the username is cached (profiled: each promise on this path showed).
  r.get(
    "/me",
    authenticated(d.check, (_req, res, c) => {
      const answer = (username: string | null): void => {
        if (username === null) throw new GatehouseError(ErrorCode.TOKEN_REVOKED);
        sendJson(res, 200, { id: c.sub, username, role: c.role });
      };
      const known = d.users.cachedUsername(c.sub);
      return known !== undefined ? answer(known) : d.users.usernameOf(c.sub).then(answer);
    }),
  );

  r.get(
    "/sessions",
    authenticated(d.check, async (_req, res, c) => {
      // Per user: each call reads the store and the cluster's presence.
      await consume(d.limits.sessionsUser, c.sub);
      const [sessions, onlineSessions] = await Promise.all([d.store.listSessions(c.sub, d.clock.now()), d.presence.sessionsOnline(c.sub)]);
      const view: SessionView[] = sessions.map((s) => ({
        sessionId: s.id,
        device: s.device,
        createdAt: new Date(s.createdAt).toISOString(),
        lastSeenAt: new Date(s.lastSeenAt).toISOString(),
        current: s.id === c.sid,
        online: onlineSessions.has(s.id),
      }));
      res.json(view);
    }),
  );

  r.delete(
    "/sessions/:sessionId",
    authenticated(d.check, async (req, res, c) => {
      await consume(d.limits.sessionsUser, c.sub);
      // not a session id at all: no such session (the same answer as someone else's)
      const sessionId = SessionIdParam.safeParse(req.params.sessionId).data;
      if (sessionId === undefined) throw new GatehouseError(ErrorCode.NOT_FOUND);
      const session = await d.store.getSession(sessionId);
      // 404 for someone else's session too: do not reveal that it exists.
      if (!session || session.userId !== c.sub) throw new GatehouseError(ErrorCode.NOT_FOUND);
      await d.revocations.revoke({ kind: "session", userId: c.sub, sessionId, reason: "session_revoked" });
      res.status(204).end();
    }),
  );

  return r;
}
