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

export type JobOutcome =
  | { state: 'success' }
  | { state: 'failed'; reason: FailureReason; exitCode?: number; message?: string };

/** Value of CI_JOB_STATUS given to after_script. */
export type JobStatusForAfterScript = 'success' | 'failed' | 'canceled' | 'timedout';

export const success: JobOutcome = Object.freeze({ state: 'success' });

export function failed(reason: FailureReason, message?: string, exitCode?: number): JobOutcome {
  const o: JobOutcome = { state: 'failed', reason };
  if (message !== undefined) o.message = message;
  if (exitCode !== undefined) o.exitCode = exitCode;
  return o;
}
