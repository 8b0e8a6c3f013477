/** The configured admin account: created (or its password reset) at start, and again if the store loses its data. */
import type { Logger } from "pino";
import type { Accounts } from "./auth/accounts";
import { hashPassword } from "./auth/passwords";

/** Returns the step to re-run after a store reset, or null (and a hint in the logs) when no admin is configured. */
export async function ensureAdminAccount(
  accounts: Accounts,
  log: Logger,
  credentials: { username: string | undefined; password: string | undefined },
  hint = "set ADMIN_USERNAME and ADMIN_PASSWORD",
): Promise<(() => Promise<void>) | null> {
  const { username, password } = credentials;
  if (!username || !password) {
    log.info(`no admin account configured: ${hint} (the account is created at start) to use /admin`);
    return null;
  }
  const passwordHash = await hashPassword(password);
  const ensure = async () => {
    const outcome = await accounts.ensureAdmin(username, password, passwordHash);
    if (outcome === "reset") log.warn({ username }, "admin password reset from ADMIN_PASSWORD; its earlier sessions were revoked");
    else log.info({ username }, outcome === "created" ? "admin account created" : "admin account ready");
  };
  await ensure();
  return ensure;
}
