/** The one error type of the SDK: a stable `code` from the contract, or a client-side one. */
import { ErrorCode, errorMessage, type ErrorDetails, type WireError } from "../../shared/errors";

/** Failures that happen on the client's side of the wire (no server code exists for them). */
export const ClientErrorCode = {
  /** the server could not be reached (fetch failed, socket transport error) */
  NETWORK: "NETWORK_ERROR",
  /** a request or an acknowledgement did not arrive in time */
  TIMEOUT: "TIMEOUT",
} as const;
export type ClientErrorCode = ErrorCode | (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const isErrorCode = (v: unknown): v is ErrorCode => typeof v === "string" && KNOWN_CODES.has(v);

/** Every failure the SDK reports: HTTP errors, refused handshakes, failed acks. Look at `code`. */
export class GatehouseClientError extends Error {
  override name = "GatehouseClientError";
  constructor(
    /** a code from shared/errors.ts, or NETWORK_ERROR / TIMEOUT */
    readonly code: ClientErrorCode,
    message: string = isErrorCode(code) ? errorMessage[code] : code,
    /** the HTTP status, for HTTP failures */
    readonly status?: number,
    options?: { cause?: unknown; details?: ErrorDetails },
  ) {
    super(message, options);
    if (options?.details) this.details = options.details;
  }

  /** Extra fields of the server's error: for USER_BANNED, `until` (ISO time or null) and `reason` (or null). */
  readonly details: ErrorDetails = {};

  /** From a `{code, message}` wire error (HTTP body, ack, connect_error data). */
  static fromWire(error: unknown, status?: number): GatehouseClientError {
    const e = (typeof error === "object" && error !== null ? error : {}) as Partial<WireError>;
    const code = isErrorCode(e.code) ? e.code : ErrorCode.INTERNAL;
    const message = typeof e.message === "string" && e.message ? e.message : errorMessage[code];
    return new GatehouseClientError(code, message, status, { details: detailsOf(e) });
  }

  /** From a socket.io `connect_error`: `err.data = {code, message}`, or `err.message` = the code. */
  static fromConnectError(err: Error & { data?: unknown }): GatehouseClientError {
    const data = err.data as Partial<WireError> | undefined;
    if (data && isErrorCode(data.code)) return GatehouseClientError.fromWire(data);
    if (isErrorCode(err.message)) return new GatehouseClientError(err.message);
    return new GatehouseClientError(ClientErrorCode.NETWORK, `Could not connect: ${err.message}`, undefined, { cause: err });
  }
}

/** Only the documented detail fields, and only with the types the contract gives them. */
function detailsOf(e: Partial<WireError>): ErrorDetails {
  const d: ErrorDetails = {};
  for (const key of ["until", "reason"] as const) {
    const v = e[key];
    if (v === null || typeof v === "string") d[key] = v;
  }
  return d;
}
