// Our failure reasons → what this GitLab accepts (docs/gitlab-protocol.md §3.4, gitlab-runner's failure_reason_mapper).
// Rails turns a reason it does not know into unknown_failure anyway; mapping here keeps the nearest
// meaning instead (an image pull failure is still a runner system failure on old GitLab).

import type { FailureReason } from '../core/outcome.js';

/** Accepted by every GitLab, listed or not. */
export const ALWAYS_SUPPORTED_FAILURE_REASONS: readonly string[] = ['script_failure', 'runner_system_failure', 'job_execution_timeout'];

/** Older, coarser reason to try when a newer one is not listed. */
const FALLBACK: Partial<Record<string, string>> = {
  image_pull_failure: 'runner_system_failure',
  runner_configuration_error: 'script_failure',
  runner_external_dependency_failure: 'runner_system_failure',
};

/**
 * The reason to send, given the job's `features.failure_reasons`. Listed (or always supported) → as is;
 * else its fallback chain; else unknown_failure (what runner_interrupted and job_canceled become unless
 * GitLab lists them). An empty reason is a script failure.
 */
export function mapFailureReason(reason: FailureReason | '' | undefined, supported: readonly string[] | undefined): string {
  if (!reason) return 'script_failure';
  const accepted = new Set([...(supported ?? []), ...ALWAYS_SUPPORTED_FAILURE_REASONS]);
  let r: string | undefined = reason;
  for (let depth = 0; r !== undefined && depth < 10; depth++) {
    if (accepted.has(r)) return r;
    r = FALLBACK[r];
  }
  return 'unknown_failure';
}
