/** Tiny JSON-over-HTTP client for tests (Node's fetch; nothing mocked). */
import type { TokenPair } from "../../shared/claims";

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) {
    body = opts.rawBody;
    headers["content-type"] ??= "application/json";
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] = "application/json";
  }
  const res = await fetch(base + path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

let counter = 0;
/** A unique, valid username for this test run. */
export function uniqueName(prefix = "user"): string {
  return `${prefix}${process.pid}x${++counter}${Math.floor(Math.random() * 1e4)}`;
}

export async function register(base: string, username = uniqueName(), password = "password-123", device = "laptop"): Promise<TokenPair> {
  const r = await call<TokenPair>(base, "POST", "/auth/register", { body: { username, password, device } });
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function login(base: string, username: string, password = "password-123", device = "phone"): Promise<TokenPair> {
  const r = await call<TokenPair>(base, "POST", "/auth/login", { body: { username, password, device } });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function adminLogin(base: string): Promise<TokenPair> {
  return login(base, "admin", "admin-password-1", "console");
}
