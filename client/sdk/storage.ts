/** Where the client keeps its token pair: memory (Node) or Web Storage (pages). */
import type { TokenPair } from "../../shared/claims";

/** Where the client keeps its token pair (synchronous, like Web Storage). */
export interface TokenStorage {
  load(): TokenPair | null;
  save(pair: TokenPair | null): void;
}

/** The default: process memory only (Node, bots, tests). */
export function memoryStorage(initial: TokenPair | null = null): TokenStorage {
  let pair = initial;
  return {
    load: () => pair,
    save: (next) => {
      pair = next;
    },
  };
}

/**
 * Web Storage. Pages use `sessionStorage` (one session per tab): a refresh
 * token must never be shared by two tabs that refresh independently (the
 * second rotation would be seen as reuse and revoke the session).
 */
export function webStorage(store: Pick<Storage, "getItem" | "setItem" | "removeItem">, key = "gatehouse.session"): TokenStorage {
  return {
    load: () => {
      try {
        const raw = store.getItem(key);
        const pair: unknown = raw ? JSON.parse(raw) : null;
        return isTokenPair(pair) ? pair : null;
      } catch {
        return null;
      }
    },
    save: (pair) => {
      if (pair) store.setItem(key, JSON.stringify(pair));
      else store.removeItem(key);
    },
  };
}

function isTokenPair(v: unknown): v is TokenPair {
  if (typeof v !== "object" || v === null) return false;
  const p = v as Record<string, unknown>;
  const user = p.user as Record<string, unknown> | undefined;
  return (
    typeof p.accessToken === "string" &&
    typeof p.refreshToken === "string" &&
    typeof p.sessionId === "string" &&
    typeof p.expiresIn === "number" &&
    typeof user === "object" &&
    user !== null &&
    typeof user.id === "string" &&
    typeof user.username === "string"
  );
}
