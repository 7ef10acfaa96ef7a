// What the fleet does after a machine could not be made ready, decided by the error's class (the typed
// errors of core/errors.ts, which providers produce at their boundary — src/providers/ec2/classify-error.ts):
//   permanent → the job fails now: AccessDenied or a missing AMI fails the same way on every try
//   capacity  → the next attempt at once: the provider already moved through its pools and benched the
//               short ones, so sleeping here would only delay the job
//   retryable / unclassified → back off, longer each attempt (throttling, 5xx, a network error)
// A machine that was created but did not become ready is tried again at once unless the reason is permanent.

import { InsufficientCapacityError, PermanentError, RetryableError } from '../core/errors.js';

export type FailureClass = 'permanent' | 'capacity' | 'retryable' | 'unclassified';

/** One class for a failed attempt's errors: any permanent error makes it permanent; only capacity errors
 *  make it capacity; otherwise it is worth a retry after a pause. */
export function classifyFailure(errors: readonly unknown[]): FailureClass {
  if (errors.some((e) => e instanceof PermanentError)) return 'permanent';
  if (errors.length > 0 && errors.every((e) => e instanceof InsufficientCapacityError)) return 'capacity';
  if (errors.some((e) => e instanceof RetryableError)) return 'retryable';
  return 'unclassified';
}

export type RetryDecision =
  | { kind: 'fail'; reason: 'permanent' | 'attempts_exhausted' }
  | { kind: 'retry'; delayMs: number; reason: 'capacity' | 'boot_failed' | 'backoff' };

export interface RetryInput {
  /** Where the attempt failed: the provider's create, or the machine's way to ready. */
  stage: 'create' | 'boot';
  cls: FailureClass;
  /** Attempts made so far, this one included (1-based). */
  attempt: number;
  maxAttempts: number;
  /** The first back-off pause; attempt n waits n times this, at most 5 times. */
  retryDelayMs: number;
}

export function decideRetry(i: RetryInput): RetryDecision {
  if (i.cls === 'permanent') return { kind: 'fail', reason: 'permanent' };
  if (i.attempt >= i.maxAttempts) return { kind: 'fail', reason: 'attempts_exhausted' };
  if (i.cls === 'capacity') return { kind: 'retry', delayMs: 0, reason: 'capacity' };
  if (i.stage === 'boot') return { kind: 'retry', delayMs: 0, reason: 'boot_failed' };
  return { kind: 'retry', delayMs: i.retryDelayMs * Math.min(i.attempt, 5), reason: 'backoff' };
}

export const POOL_RETRY_MIN_MS = 5_000;
export const POOL_RETRY_MAX_MS = 5 * 60_000;

/** The pause before the pool tries again after `failures` failed creations in a row: doubling from 5 s to
 *  5 min, and 5 min at once for a permanent error (no retry storm against a broken configuration, yet a
 *  fixed permission is noticed without a restart). */
export function poolRetryDelay(failures: number, cls: FailureClass): number {
  if (cls === 'permanent') return POOL_RETRY_MAX_MS;
  return Math.min(POOL_RETRY_MAX_MS, POOL_RETRY_MIN_MS * 2 ** Math.max(0, failures - 1));
}
