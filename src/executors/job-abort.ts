// What a hard abort means for the outcome. The caller says why through the abort signal's `reason`:
// by default an abort is a cancellation (`job_canceled`); a shutdown cut-off passes a JobAbortReason
// (or any object with a `failureReason`), e.g. `abortController.abort(shutdownCutOff())`.

import { MachineInterruptedError, failed, interrupted, type FailureReason, type JobOutcome } from '../core/index.js';

export class JobAbortReason extends Error {
  constructor(
    readonly failureReason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The coordinator cannot wait for the job any longer: GitLab sees a system failure, not a cancellation. */
export function shutdownCutOff(message = 'the runner is shutting down'): JobAbortReason {
  return new JobAbortReason('runner_system_failure', message);
}

function isAbortReason(r: unknown): r is { failureReason: FailureReason; message?: string } {
  return typeof r === 'object' && r !== null && typeof (r as { failureReason?: unknown }).failureReason === 'string';
}

export function abortOutcome(reason: unknown): JobOutcome {
  // The machine is being taken back (machine-watch.ts): the outcome says so, so the runner can run the job again.
  if (reason instanceof MachineInterruptedError) return interrupted(reason.interruption);
  if (isAbortReason(reason)) return failed(reason.failureReason, reason.message || reason.failureReason);
  return failed('job_canceled', 'canceled');
}
