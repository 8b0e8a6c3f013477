/** The one clock: everything time-dependent takes `now()` from here so tests can move time. */
export interface Clock {
  /** epoch milliseconds */
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };
