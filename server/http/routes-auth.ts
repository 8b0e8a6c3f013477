/** /auth/*: accounts, token pairs, logout. Mounted at /auth, so other paths skip it in one test. */
import { Router, type Request } from "express";
import { ErrorCode, GatehouseError } from "../../shared/errors";
import { CredentialsBody, GuestBody, PasswordChangeBody, RefreshBody, RegisterBody } from "../../shared/protocol";
import type { Accounts } from "../auth/accounts";
import type { LiveTokenCheck } from "../auth/check";
import { CLOCK_TOLERANCE_SEC, sessionIdOfRefreshToken } from "../auth/tokens";
import type { UserDirectory } from "../auth/user-directory";
import type { Revocations } from "../revocation/revocations";
import { claimsOf, requireAuth } from "./auth-middleware";
import { addressKey, consume, requireBudget, spend, withFailureBudget, type RateLimits } from "./rate-limits";
import { parse } from "./validate";

export interface AuthRoutesDeps {
  accounts: Accounts;
  check: LiveTokenCheck;
  revocations: Revocations;
  limits: RateLimits;
  users: UserDirectory;
}

const DEFAULT_DEVICE = "unknown device";

export function authRoutes(d: AuthRoutesDeps): Router {
  const r = Router();
  const auth = requireAuth(d.check);
  const ip = (req: Request) => req.ip ?? "unknown";

  r.post("/register", async (req, res) => {
    await consume(d.limits.loginIp, ip(req));
    const body = parse(RegisterBody, req.body);
    res.status(201).json(await d.accounts.register(body.username, body.password, body.device ?? DEFAULT_DEVICE));
  });

  r.post("/login", async (req, res) => {
    await consume(d.limits.loginIp, ip(req));
    const body = parse(CredentialsBody, req.body);
    const user = await withFailureBudget(d.limits, body.username, req.ip, async () => {
      const found = await d.accounts.verifyCredentials(body.username, body.password);
      if (!found) throw new GatehouseError(ErrorCode.CREDENTIALS_INVALID);
      return found;
    });
    res.json(await d.accounts.login(user, body.device ?? DEFAULT_DEVICE));
  });

  r.post("/guest", async (req, res) => {
    await consume(d.limits.loginIp, ip(req));
    const body = parse(GuestBody, req.body ?? {});
    res.status(201).json(await d.accounts.guest(body.device ?? "guest"));
  });

  r.post("/refresh", async (req, res) => {
    // Per address, before anything else: one address must not rotate (or probe) without bound.
    await consume(d.limits.refreshIp, addressKey(req.ip));
    const body = parse(RefreshBody, req.body);
    const sessionId = sessionIdOfRefreshToken(body.refreshToken);
    if (!sessionId) throw new GatehouseError(ErrorCode.REFRESH_INVALID);
    // A session id is no secret (it is in every access token): only tokens the store knows spend
    // the session's budget, so nobody can exhaust another player's refreshes with made-up ones.
    await requireBudget(d.limits.refreshSession, sessionId);
    try {
      res.json(await d.accounts.refresh(body.refreshToken));
    } catch (err) {
      if (!(err instanceof GatehouseError && err.code === ErrorCode.REFRESH_INVALID)) await spend(d.limits.refreshSession, sessionId);
      throw err;
    }
    await spend(d.limits.refreshSession, sessionId);
  });

  r.post("/logout", auth, async (req, res) => {
    const c = claimsOf(req);
    // Blacklist this very token as well as its session: covers it even if the session mark were missed.
    // The jti mark lives as long as any node may still accept the token: exp plus the clock tolerance.
    const jtiExp = (c.exp + CLOCK_TOLERANCE_SEC) * 1000;
    await d.revocations.revoke({ kind: "session", userId: c.sub, sessionId: c.sid, jti: c.jti, jtiExp, reason: "logout" });
    res.status(204).end();
  });

  r.post("/logout-all", auth, async (req, res) => {
    await d.revocations.revoke({ kind: "user", userId: claimsOf(req).sub, reason: "logout_all" });
    res.status(204).end();
  });

  r.post("/password", auth, async (req, res) => {
    const c = claimsOf(req);
    const body = parse(PasswordChangeBody, req.body);
    // The old password is a secret a stolen access token must not be able to guess at leisure
    // (nor burn scrypt CPU with): the login's failure budget, same key, so guesses add up.
    const username = await d.users.usernameOf(c.sub);
    if (username === null) throw new GatehouseError(ErrorCode.TOKEN_REVOKED);
    res.json(await withFailureBudget(d.limits, username, req.ip, () => d.accounts.changePassword(c.sub, c.sid, body.oldPassword, body.newPassword)));
  });

  return r;
}
