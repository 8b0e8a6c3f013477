/** Reading an access token's timing, and the cross-tab lock around a refresh-token rotation. */

/** Decodes (does NOT verify: the server does) the timing claims of an access token. */
export function decodeAccessToken(token: string): { exp: number; iat: number; sid?: string; sub?: string } | null {
  try {
    const part = token.split(".")[1];
    if (!part) return null;
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const claims = JSON.parse(atob(b64)) as Record<string, unknown>;
    if (typeof claims.exp !== "number" || typeof claims.iat !== "number") return null;
    return claims as { exp: number; iat: number; sid?: string; sub?: string };
  } catch {
    return null;
  }
}

/**
 * Runs `fn` under a cross-tab lock where the Web Locks API exists (browsers,
 * secure contexts), so tabs sharing one storage rotate a refresh token one at a time.
 */
export async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks || typeof locks.request !== "function") return fn();
  return (await locks.request(name, () => fn())) as T;
}

/** Lets a Node process exit while a timer is pending (no-op in browsers). */
export const unref = (t: ReturnType<typeof setTimeout>) => {
  if (typeof t === "object" && t !== null && "unref" in t) (t as { unref(): void }).unref();
};
