/**
 * pino logger. Secrets are never passed to it on purpose; the redaction list is
 * the second line of defence for anything that slips into a logged object.
 */
import { pino, type Logger, type DestinationStream } from "pino";

export const REDACT_PATHS = [
  "token",
  "accessToken",
  "refreshToken",
  "password",
  "oldPassword",
  "newPassword",
  "authorization",
  "*.token",
  "*.accessToken",
  "*.refreshToken",
  "*.password",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "auth",
  "*.auth",
];

export function createLogger(opts: { level: string; nodeId: string }, destination?: DestinationStream): Logger {
  return pino(
    { level: opts.level, base: { node: opts.nodeId }, redact: { paths: REDACT_PATHS, censor: "[redacted]" } },
    destination ?? pino.destination(1),
  );
}
