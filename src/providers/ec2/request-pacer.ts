// A token bucket in front of RunInstances, sized like AWS's own (per account and region: 5 requests burst,
// refilled at 2 per second). One RunInstances call launches one machine (each has its own host key in its
// user data), so a burst of 10 machines would otherwise empty AWS's bucket and come back as
// RequestLimitExceeded; pacing here turns that into a short, predictable wait. Reservations may drive the
// balance negative, so concurrent callers queue up fairly without a loop.

import type { Clock } from '../../core/clock.js';

export interface RequestPacerOptions {
  clock: Clock;
  /** Bucket size. Default 5. */
  burst?: number;
  /** Tokens per second. Default 2. */
  perSecond?: number;
}

export class RequestPacer {
  private tokens: number;
  private last: number;
  private readonly burst: number;
  private readonly perMs: number;

  constructor(private readonly o: RequestPacerOptions) {
    this.burst = o.burst ?? 5;
    this.perMs = (o.perSecond ?? 2) / 1000;
    this.tokens = this.burst;
    this.last = o.clock.now();
  }

  /** Resolves when this caller may send one request. */
  async take(signal?: AbortSignal): Promise<void> {
    const now = this.o.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    try {
      await this.o.clock.sleep(Math.ceil(-this.tokens / this.perMs), signal);
    } catch (e) {
      this.tokens += 1; // gave up its place in the queue
      throw e;
    }
  }
}
