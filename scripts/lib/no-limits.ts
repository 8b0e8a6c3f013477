/**
 * Env that switches every rate limit off: many players from one address (tests, bots, the soak,
 * `npm run cluster -- --no-limits`). One list, so a limit added later cannot be forgotten in one
 * of them (the soak missed RATE_LIMIT_REFRESH_IP: 136,617 refreshes refused in one run).
 */
export const NO_LIMITS = {
  RATE_LIMIT_LOGIN_USER: "0",
  RATE_LIMIT_LOGIN_USER_NEW_ADDRESS: "0",
  RATE_LIMIT_LOGIN_IP: "0",
  RATE_LIMIT_HANDSHAKE_IP: "0",
  RATE_LIMIT_REFRESH_IP: "0",
  RATE_LIMIT_REFRESH_SESSION: "0",
  RATE_LIMIT_SESSIONS_USER: "0",
} as const;
