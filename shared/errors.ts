/**
 * Error codes of the public contract (section 3), shared by server and client.
 * Messages are fixed and reveal nothing (no "user not found" vs "bad password").
 */
export const ErrorCode = {
  VALIDATION_FAILED: "VALIDATION_FAILED",
  CREDENTIALS_INVALID: "CREDENTIALS_INVALID",
  USERNAME_TAKEN: "USERNAME_TAKEN",
  TOKEN_MISSING: "TOKEN_MISSING",
  TOKEN_INVALID: "TOKEN_INVALID",
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  TOKEN_REVOKED: "TOKEN_REVOKED",
  SESSION_REVOKED: "SESSION_REVOKED",
  USER_BANNED: "USER_BANNED",
  REFRESH_INVALID: "REFRESH_INVALID",
  REFRESH_REUSED: "REFRESH_REUSED",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  RATE_LIMITED: "RATE_LIMITED",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  REVOCATION_UNAVAILABLE: "REVOCATION_UNAVAILABLE",
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** HTTP status for each code (contract section 3: "an honest status"). */
export const errorStatus: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  CREDENTIALS_INVALID: 401,
  USERNAME_TAKEN: 409,
  TOKEN_MISSING: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REVOKED: 401,
  SESSION_REVOKED: 401,
  USER_BANNED: 403,
  REFRESH_INVALID: 401,
  REFRESH_REUSED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  RATE_LIMITED: 429,
  PAYLOAD_TOO_LARGE: 413,
  REVOCATION_UNAVAILABLE: 503,
  INTERNAL: 500,
};

export const errorMessage: Record<ErrorCode, string> = {
  VALIDATION_FAILED: "The request is not valid.",
  CREDENTIALS_INVALID: "Username or password is wrong.",
  USERNAME_TAKEN: "That username is taken.",
  TOKEN_MISSING: "An access token is required.",
  TOKEN_INVALID: "The access token is not valid.",
  TOKEN_EXPIRED: "The access token has expired.",
  TOKEN_REVOKED: "The access token has been revoked.",
  SESSION_REVOKED: "This session has been revoked.",
  USER_BANNED: "This account is banned.",
  REFRESH_INVALID: "The refresh token is not valid.",
  REFRESH_REUSED: "The refresh token was already used; the session has been revoked.",
  FORBIDDEN: "You are not allowed to do that.",
  NOT_FOUND: "Not found.",
  RATE_LIMITED: "Too many requests; try again later.",
  PAYLOAD_TOO_LARGE: "The request body is too large.",
  REVOCATION_UNAVAILABLE: "Revocation state is unavailable; try again shortly.",
  INTERNAL: "Something went wrong.",
};

/** Fields some codes carry beside `code` and `message` (USER_BANNED: `until`, `reason`). */
export interface ErrorDetails {
  /** USER_BANNED: when the ban ends (ISO time), null = permanent */
  until?: string | null;
  /** USER_BANNED: the admin's text, or null */
  reason?: string | null;
}

/** The wire shape of every error: HTTP bodies, acks and connect_error data. */
export interface WireError extends ErrorDetails {
  code: ErrorCode;
  message: string;
}

/** Base class for coded failures; `code` is what callers and tests look at. */
export class GatehouseError extends Error {
  override name = "GatehouseError";
  constructor(
    readonly code: ErrorCode,
    message: string = errorMessage[code],
    /** extra fields of the wire error (see ErrorDetails) */
    readonly details?: ErrorDetails,
  ) {
    super(message);
  }
  toWire(): WireError {
    return { code: this.code, message: this.message, ...this.details };
  }
}
