// How a job ended, in GitLab's vocabulary. docs/gitlab-protocol.md §3.4 and §6.2.

/** Failure reasons the runner may send; GitLab accepts the first three always, the rest only if listed
 *  in the job's `features.failure_reasons` (see `gitlab/failure-reasons.ts` for the fallback mapping). */
export type FailureReason =
  | 'script_failure'
  | 'runner_system_failure'
  | 'job_execution_timeout'
  | 'unknown_failure'
  | 'image_pull_failure'
  | 'runner_configuration_error'
  | 'runner_external_dependency_failure'
  | 'runner_interrupted'
  | 'job_canceled';

/** The cloud's notice that it is taking the machine back (EC2: a spot interruption, read from IMDS by the
 *  machine's agent into `stateDir/interruption`). `time` is when, as the cloud wrote it (ISO 8601). */
export interface MachineInterruption {
  action: string;
  time?: string;
}

export type JobOutcome =
  | { state: 'success' }
  | {
      state: 'failed';
      reason: FailureReason;
      exitCode?: number;
      message?: string;
      /** Set when the job was stopped because its machine is being taken back: the runner may run it again
       *  on a new machine instead of reporting this outcome. */
      interruption?: MachineInterruption;
    };

/** Value of CI_JOB_STATUS given to after_script. */
export type JobStatusForAfterScript = 'success' | 'failed' | 'canceled' | 'timedout';

export const success: JobOutcome = Object.freeze({ state: 'success' });

export function failed(reason: FailureReason, message?: string, exitCode?: number): JobOutcome {
  const o: JobOutcome = { state: 'failed', reason };
  if (message !== undefined) o.message = message;
  if (exitCode !== undefined) o.exitCode = exitCode;
  return o;
}

/** How an interruption is described in traces, logs and failure messages. */
export function describeInterruption(i: MachineInterruption): string {
  return `the machine got an interruption notice from its cloud (action ${i.action}${i.time ? `, at ${i.time}` : ''})`;
}

/** The job's stages were stopped because its machine is being interrupted: a system failure, unless the
 *  runner runs it again elsewhere. */
export function interrupted(i: MachineInterruption): JobOutcome {
  return { state: 'failed', reason: 'runner_system_failure', message: describeInterruption(i), interruption: { ...i } };
}
