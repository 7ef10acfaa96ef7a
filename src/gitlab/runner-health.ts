// Stops hammering GitLab with a token it keeps refusing (docs/gitlab-protocol.md §2.2, check 6): after 3 consecutive
// 403s on jobs/request the runner is skipped for 60 min, then tried again.

import type { Clock } from '../core/clock.js';
import type { JobRequestResult } from './api-types.js';

export interface RunnerHealthOptions {
  clock: Pick<Clock, 'now'>;
  /** Consecutive 403s that make the runner unhealthy. Default 3. */
  failureLimit?: number;
  /** How long an unhealthy runner is skipped. Default 60 min. */
  skipMs?: number;
}

export class RunnerHealth {
  private failures = 0;
  private skipUntil = 0;
  private readonly limit: number;
  private readonly skipMs: number;

  constructor(private readonly o: RunnerHealthOptions) {
    this.limit = o.failureLimit ?? 3;
    this.skipMs = o.skipMs ?? 60 * 60_000;
  }

  /** False while the runner is being skipped; once the skip ends the count starts afresh. */
  shouldRequest(): boolean {
    if (this.failures < this.limit) return true;
    if (this.o.clock.now() < this.skipUntil) return false;
    this.failures = 0;
    return true;
  }

  /** ms epoch when requests may resume, while skipping. */
  skippingUntil(): number | undefined {
    return this.failures >= this.limit && this.o.clock.now() < this.skipUntil ? this.skipUntil : undefined;
  }

  /** Feeds one jobs/request outcome: 403 counts against the runner, and so does a 201 whose job cannot be
   *  read (gitlab-runner counts that client error as unhealthy too); any other answer (including 503,
   *  where GitLab itself is the problem) proves the token good and resets the count. No answer at all
   *  (status 0) says nothing about the token and changes nothing. */
  record(result: JobRequestResult | 'healthy' | 'unhealthy'): void {
    if (typeof result === 'object' && result.kind === 'error' && result.status === 0) return;
    const bad =
      result === 'unhealthy' ||
      (typeof result === 'object' && (result.kind === 'forbidden' || (result.kind === 'error' && result.status === 201)));
    if (!bad) {
      this.failures = 0;
      return;
    }
    this.failures++;
    if (this.failures === this.limit) this.skipUntil = this.o.clock.now() + this.skipMs;
  }
}
