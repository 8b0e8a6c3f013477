/**
 * One tab per session. Pages keep their pair in sessionStorage, but a browser
 * copies sessionStorage into a DUPLICATED tab: two tabs would then hold the
 * same refresh token, and the second rotation would be refresh-token reuse,
 * revoking the session in both. Each tab holds a Web Lock named after its
 * session for its whole life; a tab that finds the lock taken is a duplicate
 * and starts without the copied session. (Without the Web Locks API, plain
 * http on a non-local host, the check is skipped.)
 */
const held = new Map<string, () => void>();

/** Resolves true if this tab now owns `sessionId` (or already did), false if another tab does. */
export function claimTab(sessionId: string): Promise<boolean> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (!locks || held.has(sessionId)) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    locks
      .request(`gatehouse-tab:${sessionId}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return undefined;
        }
        resolve(true);
        // Held until released, or until the page goes away.
        return new Promise<void>((release) => held.set(sessionId, release));
      })
      .catch(() => resolve(true));
  });
}

/** Lets go of every session lock except `keep`'s. */
export function releaseTabsExcept(keep: string | null): void {
  for (const [sessionId, release] of held) {
    if (sessionId === keep) continue;
    release();
    held.delete(sessionId);
  }
}
