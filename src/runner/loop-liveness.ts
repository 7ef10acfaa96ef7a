// Whether the job loop still turns: the liveness behind /healthz. The loop says which wait it enters
// (Coordinator's `onLoopWait`); each wait has a bound it cannot outlive when the process is healthy, except
// waiting for capacity, which lasts as long as the running jobs do (a job may run for hours). A wait past
// its bound means the loop is stuck (a request that never returns, a timer that never fires) and the task
// should be replaced; ECS does that when the container health check fails.
//
//   requesting             bound: requestStaleMs (a job request is long-polled ~50 s and times out after
//                          5 min; retried transport errors included, 20 min is far past any healthy request)
//   pausing                bound: its own length + pauseGraceMs
//   waiting_for_capacity   no bound: slots come back when jobs end
//   stopped                no bound: the stop is bounded by shutdownTimeout/handoffTimeout and ECS's stopTimeout

import type { Clock } from '../core/clock.js';

export type LoopWait =
  | { kind: 'requesting' }
  /** `why`: GitLab had no job, GitLab paused us (the token is refused for now), or the request failed. */
  | { kind: 'pausing'; ms: number; why: 'no_job' | 'gitlab_paused' | 'request_failed' }
  | { kind: 'waiting_for_capacity' }
  | { kind: 'stopped' };

export type LivenessReason = 'not_started' | 'requesting' | 'pausing' | 'waiting_for_capacity' | 'stopped' | 'request_stuck' | 'pause_overrun';

export interface LoopVerdict {
  live: boolean;
  reason: LivenessReason;
  /** How long the loop has been in its current wait. */
  forMs: number;
  /** The current wait (absent before the loop's first turn). */
  wait?: LoopWait;
}

export interface LoopLivenessOptions {
  requestStaleMs?: number;
  pauseGraceMs?: number;
}

export const DEFAULT_REQUEST_STALE_MS = 20 * 60_000;
export const DEFAULT_PAUSE_GRACE_MS = 60_000;

export class LoopLiveness {
  private current: { wait: LoopWait; at: number } | undefined;
  private readonly requestStaleMs: number;
  private readonly pauseGraceMs: number;

  constructor(
    private readonly clock: Clock,
    o: LoopLivenessOptions = {},
  ) {
    this.requestStaleMs = o.requestStaleMs ?? DEFAULT_REQUEST_STALE_MS;
    this.pauseGraceMs = o.pauseGraceMs ?? DEFAULT_PAUSE_GRACE_MS;
  }

  /** The loop enters a wait (its observer; see CoordinatorOptions.onLoopWait). */
  entered(wait: LoopWait): void {
    this.current = { wait, at: this.clock.now() };
  }

  verdict(): LoopVerdict {
    const c = this.current;
    if (!c) return { live: true, reason: 'not_started', forMs: 0 };
    const forMs = this.clock.now() - c.at;
    const v = (live: boolean, reason: LivenessReason): LoopVerdict => ({ live, reason, forMs, wait: c.wait });
    switch (c.wait.kind) {
      case 'requesting':
        return forMs > this.requestStaleMs ? v(false, 'request_stuck') : v(true, 'requesting');
      case 'pausing':
        return forMs > c.wait.ms + this.pauseGraceMs ? v(false, 'pause_overrun') : v(true, 'pausing');
      case 'waiting_for_capacity':
        return v(true, 'waiting_for_capacity');
      case 'stopped':
        return v(true, 'stopped');
    }
  }
}
