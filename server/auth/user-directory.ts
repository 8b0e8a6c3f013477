/**
 * Usernames by user id, cached: they never change, and the handshake and /me
 * need them without a store round trip on every call.
 */
import type { Store } from "../store/store";

const MAX_ENTRIES = 50_000;

export class UserDirectory {
  private readonly names = new Map<string, string>();

  constructor(private readonly store: Store) {}

  /** the username if this node knows it already (no store read, no promise), else undefined */
  cachedUsername(userId: string): string | undefined {
    return this.names.get(userId);
  }

  /** null when the user does not exist (anymore). */
  async usernameOf(userId: string): Promise<string | null> {
    const known = this.names.get(userId);
    if (known !== undefined) return known;
    const user = await this.store.getUser(userId);
    if (!user) return null;
    // Oldest entry out first (Map keeps insertion order): a bounded cache.
    if (this.names.size >= MAX_ENTRIES) this.names.delete(this.names.keys().next().value!);
    this.names.set(userId, user.username);
    return user.username;
  }
}
