// A Clock whose sleeps end at once (on the next turn of the event loop) and move virtual time forward,
// so a 30 s keep-alive or a 60 min backoff takes microseconds while real HTTP still runs in between.

import type { Clock } from '../../../../src/core/clock.js';

export class VirtualClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(private t = Date.UTC(2025, 0, 1)) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const h = setImmediate(() => {
        signal?.removeEventListener('abort', onAbort);
        this.t += Math.max(0, ms);
        resolve();
      });
      const onAbort = () => {
        clearImmediate(h);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
