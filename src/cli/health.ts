// /healthz and /readyz, served on the metrics listener (`metrics.listen`).
//
//   /healthz  liveness: 200 unless the job loop is stuck (loop-liveness.ts). Start-up phases count as live:
//             waiting for the lease a predecessor still holds, or for an unreachable GitLab, is progress with
//             a log line per attempt, and replacing the task would not make it come sooner.
//   /readyz   readiness: 200 once GitLab verified the runner, the lease is held and the loop runs (and GitLab
//             is not refusing the token for now); 503 with the reason otherwise.
//
// Why the metrics listener and not a health listener of its own: one port and one server, already
// checked at config time and taken before GitLab hears of the runner manager; the health check runs inside
// the container (docker/Dockerfile's HEALTHCHECK, the task definition's healthCheck) against loopback, so it
// needs no port of its own in the security group. The CloudFormation stack sets `metrics.listen: ":9090"`.

import type { Clock } from '../core/clock.js';
import { LoopLiveness, type LoopWait } from '../runner/loop-liveness.js';

export type CoordinatorPhase = 'waiting_for_lease' | 'reading_token' | 'waiting_for_gitlab' | 'taking_over' | 'running' | 'stopping';

export interface HealthAnswer {
  status: 200 | 503;
  body: string;
}

export class CoordinatorHealth {
  private phase: CoordinatorPhase = 'waiting_for_lease';
  private readonly loop: LoopLiveness;
  private lease: { held(): boolean } | undefined;

  constructor(clock: Clock) {
    this.loop = new LoopLiveness(clock);
  }

  enter(phase: CoordinatorPhase): void {
    this.phase = phase;
  }

  /** The lease once held: readiness ends when it is lost. */
  holding(lease: { held(): boolean }): void {
    this.lease = lease;
  }

  /** The coordinator's loop observer. */
  readonly onLoopWait = (wait: LoopWait, requester?: string): void => this.loop.entered(wait, requester);

  liveness(): HealthAnswer {
    if (this.phase !== 'running') return answer(true, { phase: this.phase });
    const v = this.loop.verdict();
    return answer(v.live, { phase: this.phase, loop: v.reason, forS: Math.round(v.forMs / 1000) });
  }

  readiness(): HealthAnswer {
    if (this.phase !== 'running') return answer(false, { phase: this.phase });
    if (this.lease && !this.lease.held()) return answer(false, { phase: this.phase, reason: 'lease_not_held' });
    const v = this.loop.verdict();
    if (!v.live) return answer(false, { phase: this.phase, reason: v.reason });
    if (v.wait?.kind === 'pausing' && v.wait.why === 'gitlab_paused') return answer(false, { phase: this.phase, reason: 'gitlab_refusing_token' });
    return answer(true, { phase: this.phase, loop: v.reason });
  }

  /** The routes for the metrics server. */
  routes(): Record<string, () => HealthAnswer> {
    return { '/healthz': () => this.liveness(), '/readyz': () => this.readiness() };
  }
}

function answer(ok: boolean, detail: Record<string, string | number>): HealthAnswer {
  return { status: ok ? 200 : 503, body: `${JSON.stringify({ status: ok ? 'ok' : 'fail', ...detail })}\n` };
}
