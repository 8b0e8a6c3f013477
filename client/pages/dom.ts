/** Small DOM helpers shared by the game and admin pages (no framework). */
import { ErrorCode } from "../../shared/errors";
import { ClientErrorCode, GatehouseClientError } from "../sdk";

/** The element with `data-testid="<id>"`; a missing one is a page bug, so it throws. */
export function byTestId<T extends HTMLElement = HTMLElement>(id: string, root: ParentNode = document): T {
  const found = root.querySelector<T>(`[data-testid="${id}"]`);
  if (!found) throw new Error(`page element missing: ${id}`);
  return found;
}

type Child = Node | string | null | undefined | false;

/** Creates an element; text children become text nodes (never HTML: names and chat are user input). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/** Shows exactly the given element among `all`. */
export function showOnly(visible: HTMLElement | null, all: HTMLElement[]): void {
  for (const e of all) e.hidden = e !== visible;
}

const FRIENDLY: Partial<Record<string, string>> = {
  [ErrorCode.CREDENTIALS_INVALID]: "Wrong username or password.",
  [ErrorCode.USERNAME_TAKEN]: "That username is taken.",
  [ErrorCode.VALIDATION_FAILED]: "Check the form: a username is 3-32 letters, digits, _ or -; a password is at least 8 characters.",
  [ErrorCode.RATE_LIMITED]: "Too many attempts; wait a moment and try again.",
  [ErrorCode.USER_BANNED]: "This account is banned.",
  [ErrorCode.FORBIDDEN]: "You are not allowed to do that.",
  [ErrorCode.REVOCATION_UNAVAILABLE]: "The server cannot check sessions right now; try again shortly.",
  [ErrorCode.TOKEN_REVOKED]: "Your session has ended; log in again.",
  [ErrorCode.SESSION_REVOKED]: "Your session has ended; log in again.",
  [ErrorCode.TOKEN_EXPIRED]: "Your session expired; log in again.",
  [ErrorCode.REFRESH_INVALID]: "Your session has ended; log in again.",
  [ClientErrorCode.NETWORK]: "Cannot reach the server.",
  [ClientErrorCode.TIMEOUT]: "The server did not answer in time.",
};

/** Human text for a failure; a ban says until when and why. */
export function errorText(err: unknown): string {
  if (err instanceof GatehouseClientError && err.code === ErrorCode.USER_BANNED) return bannedText(err.details.until ?? null, err.details.reason ?? null);
  if (err instanceof GatehouseClientError) return FRIENDLY[err.code] ?? err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Codes after which the stored session is useless (log in again). */
export function sessionIsDead(err: unknown): boolean {
  if (!(err instanceof GatehouseClientError)) return false;
  const dead: string[] = [
    ErrorCode.TOKEN_INVALID,
    ErrorCode.TOKEN_EXPIRED,
    ErrorCode.TOKEN_REVOKED,
    ErrorCode.SESSION_REVOKED,
    ErrorCode.USER_BANNED,
    ErrorCode.REFRESH_INVALID,
    ErrorCode.REFRESH_REUSED,
    ErrorCode.TOKEN_MISSING,
  ];
  return dead.includes(err.code);
}

export const formatTime = (iso: string | number): string => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const formatDateTime = (iso: string): string => new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "medium" });

/** One time zone for every time an admin compares (audit, bans, sessions): "2026-12-02 03:04:05 UTC". */
export const formatUtc = (iso: string | number): string => `${new Date(iso).toISOString().slice(0, 19).replace("T", " ")} UTC`;

/** What a banned player is told: the end (or none) and the admin's reason. */
export function bannedText(until: string | null, reason: string | null): string {
  const end = until ? `until ${formatUtc(until)}` : "with no end date";
  return `This account is banned ${end}.${reason ? ` Reason: ${reason}` : ""}`;
}
