// A token bucket in front of RunInstances, sized like AWS's own (per account and region: 5 requests burst,
// refilled at 2 per second). Launches that queue up behind it are batched (launch-batcher.ts), so a burst
// of machines costs a few calls; pacing here keeps even those from coming back as RequestLimitExceeded. Reservations may drive the
// balance negative, so concurrent callers queue up fairly without a loop.

import type { Clock } from '../../core/clock.js';

export interface RequestPacerOptions {
  clock: Clock;
  /** Bucket size. Default 5. */
  burst?: number;
  /** Tokens per second. Default 2. */
  perSecond?: number;
  /** Added to every wait: a call reaches EC2 some time after its token is taken here, and EC2's bucket
   *  counts from when calls arrive, so a call sent the moment our bucket refills can arrive just before
   *  EC2's has (seen in bench/burst.mjs: 14-27 ms apart). Default 100 ms. */
  marginMs?: number;
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

  /** Whole tokens left right now (0 while callers are queued): what a burst can still spend at once. */
  available(): number {
    this.refill();
    return Math.max(0, Math.floor(this.tokens));
  }

  private refill(): void {
    const now = this.o.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs);
    this.last = now;
  }

  /** Resolves when this caller may send one request. */
  async take(signal?: AbortSignal): Promise<void> {
    this.refill();
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    try {
      await this.o.clock.sleep(Math.ceil(-this.tokens / this.perMs) + (this.o.marginMs ?? 100), signal);
    } catch (e) {
      this.tokens += 1; // gave up its place in the queue
      throw e;
    }
  }
}
