/**
 * Small generic waiting helpers for tests: prefer awaiting an event (`once`);
 * poll (`waitFor`) only for conditions that emit nothing.
 */
import type { EventEmitter } from "node:events";

export interface WaitForOptions {
  /** default 5000 */
  timeoutMs?: number;
  /** default 20 */
  intervalMs?: number;
  /** included in the timeout error */
  message?: string;
}

/**
 * Polls `predicate` until it returns a truthy value (which is returned), or
 * rejects after `timeoutMs` with the last thrown error as cause. A predicate
 * that throws counts as "not yet".
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<NonNullable<T>> {
  const { timeoutMs = 5000, intervalMs = 20, message = "condition" } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const e = new Error(`waitFor: ${message} not met within ${timeoutMs} ms`);
      if (lastError !== undefined) e.cause = lastError;
      throw e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves with the arguments of the next `event` on `emitter`; rejects after `timeoutMs` (default 5000). */
export function once<A extends unknown[] = unknown[]>(emitter: EventEmitter, event: string, timeoutMs = 5000): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    const onEvent = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as A);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`once: no "${event}" within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(event, onEvent);
  });
}

/** A promise with its resolve/reject exposed, for turning callbacks into awaitable signals. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Rejects if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what = "operation"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
