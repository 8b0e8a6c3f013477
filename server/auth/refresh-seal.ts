/**
 * REFRESH_REUSE_GRACE without a usable secret at rest. When a refresh token R is
 * rotated to R', the store keeps R only as its SHA-256 and R' only sealed
 * (AES-256-GCM) under a key derived from R (HKDF-SHA256). A retry that presents
 * R within the grace opens R' and gets the same live token back; a copy of the
 * store alone, without R, opens nothing.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const INFO = "gatehouse refresh successor v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyOf(presented: string): Buffer {
  return Buffer.from(hkdfSync("sha256", presented, Buffer.alloc(0), INFO, 32));
}

/** `next` sealed so that only `presented` opens it (base64url of iv | tag | ciphertext). */
export function sealSuccessor(next: string, presented: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyOf(presented), iv);
  const body = Buffer.concat([cipher.update(next, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
}

/** The sealed successor, or null if `presented` does not open it (or it was tampered with). */
export function openSuccessor(sealed: string, presented: string): string | null {
  try {
    const raw = Buffer.from(sealed, "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return null;
    const decipher = createDecipheriv("aes-256-gcm", keyOf(presented), raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    return null;
  }
}
