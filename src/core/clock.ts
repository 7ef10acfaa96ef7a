// Time is injected: domain code never reads the wall clock directly.
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. Either way it leaves
   *  no listener on the signal: callers keep one signal for many sleeps. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The longest delay one Node timer can wait: 2^31-1 ms, about 24.8 days. Asked for more, setTimeout
 * waits 1 ms instead (with a TimeoutOverflowWarning), so a 30-day wait would end at once.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** A delay setTimeout honours: within [0, MAX_TIMER_DELAY_MS], and 0 for NaN. For code arming its own timers. */
export function clampTimerDelay(ms: number): number {
  return ms > 0 ? Math.min(ms, MAX_TIMER_DELAY_MS) : 0;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  // Delays past one timer's limit (a GitLab job timeout of a month, say) are waited out in several
  // timers, each at most MAX_TIMER_DELAY_MS, instead of overflowing into a 1 ms wait.
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      let left = ms > 0 ? ms : 0; // NaN and negatives: no wait; Infinity: until the signal aborts
      let t: ReturnType<typeof setTimeout>;
      const arm = () => {
        const step = clampTimerDelay(left);
        left -= step;
        t = setTimeout(() => {
          if (left > 0) return arm();
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, step);
      };
      const onAbort = () => {
        clearTimeout(t);
        reject(signal!.reason);
      };
      arm();
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
