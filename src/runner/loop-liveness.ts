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
//
// The loop is several requesters (requestConcurrency, and one set per runner of `runners:`): each says its
// own waits, and one stuck requester makes the loop stuck however busy the others are.

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
  /** Each requester's current wait; `latest` is the one that changed last. */
  private readonly waits = new Map<string, { wait: LoopWait; at: number }>();
  private latest: string | undefined;
  private readonly requestStaleMs: number;
  private readonly pauseGraceMs: number;

  constructor(
    private readonly clock: Clock,
    o: LoopLivenessOptions = {},
  ) {
    this.requestStaleMs = o.requestStaleMs ?? DEFAULT_REQUEST_STALE_MS;
    this.pauseGraceMs = o.pauseGraceMs ?? DEFAULT_PAUSE_GRACE_MS;
  }

  /** A requester of the loop enters a wait (its observer; see CoordinatorOptions.onLoopWait). */
  entered(wait: LoopWait, requester = 'loop'): void {
    this.waits.set(requester, { wait, at: this.clock.now() });
    this.latest = requester;
  }

  /** The first requester that is stuck, else the one that changed last. */
  verdict(): LoopVerdict {
    for (const key of this.waits.keys()) {
      const v = this.judge(key);
      if (!v.live) return v;
    }
    return this.latest === undefined ? { live: true, reason: 'not_started', forMs: 0 } : this.judge(this.latest);
  }

  private judge(requester: string): LoopVerdict {
    const c = this.waits.get(requester)!;
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
