// Retries an AWS call that was throttled or failed transiently, with exponential backoff and jitter. For EC2
// this is the only retry layer (the SDK's is off, see aws/clients.ts, so capacity errors are never repeated):
// pauses of about 1 s, 2 s, 4 s, 8 s (capped at 20 s), then the error goes up. EC2 refills RunInstances at 2 requests/s and Describe* at 20/s per account and
// region, so a one-second pause already refills the buckets for us; the jitter keeps concurrent launches
// from coming back in lockstep. Only 'throttled' and 'transient' are retried; everything else is thrown at once.

import type { Clock } from '../../core/clock.js';
import { classifyEc2Error } from './classify-error.js';

export interface ThrottleRetryOptions {
  clock: Clock;
  /** Total tries including the first. Default 5. */
  attempts?: number;
  /** First pause. Default 1000 ms. */
  baseDelayMs?: number;
  /** Longest pause. Default 20 s. */
  maxDelayMs?: number;
  /** [0, 1) source for the jitter; a seam for tests. Default Math.random. */
  random?: () => number;
  signal?: AbortSignal;
  /** Told before each pause (for logging). */
  onRetry?: (info: { attempt: number; delayMs: number; code: string }) => void;
}

/** "Equal jitter": half the exponential step is fixed, half random, so a pause never collapses to zero. */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number): number {
  const step = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(step / 2 + (step / 2) * random());
}

export async function withThrottleRetry<T>(op: () => Promise<T>, o: ThrottleRetryOptions): Promise<T> {
  const attempts = Math.max(1, o.attempts ?? 5);
  const random = o.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    try {
      return await op();
    } catch (e) {
      const c = classifyEc2Error(e);
      if ((c.kind !== 'throttled' && c.kind !== 'transient') || attempt >= attempts) throw e;
      const delayMs = backoffDelay(attempt, o.baseDelayMs ?? 1000, o.maxDelayMs ?? 20_000, random);
      o.onRetry?.({ attempt, delayMs, code: c.code });
      await o.clock.sleep(delayMs, o.signal);
    }
  }
}
