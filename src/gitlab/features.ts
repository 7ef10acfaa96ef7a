// The `info.features` map GitLab reads (docs/gitlab-protocol.md §2.4). Rails decides from it which jobs it may hand us
// (missing required feature → job dropped as runner_unsupported) and whether `canceling` is used.

/** Every feature name gitlab-runner knows, in its FeaturesInfo order. */
export const KNOWN_FEATURES = [
  'variables',
  'image',
  'services',
  'artifacts',
  'cache',
  'fallback_cache_keys',
  'shared',
  'upload_multiple_artifacts',
  'upload_raw_artifacts',
  'session',
  'terminal',
  'refspecs',
  'masking',
  'proxy',
  'raw_variables',
  'artifacts_exclude',
  'multi_build_steps',
  'trace_reset',
  'trace_checksum',
  'trace_size',
  'vault_secrets',
  'cancelable',
  'return_exit_code',
  'service_variables',
  'service_multiple_aliases',
  'image_executor_opts',
  'service_executor_opts',
  'cancel_gracefully',
  'native_steps_integration',
  'two_phase_job_commit',
  'job_inputs',
] as const;

export type RunnerFeature = (typeof KNOWN_FEATURES)[number];
export type FeatureMap = Record<RunnerFeature, boolean>;

/**
 * What this client itself does, whatever the executor:
 * trace_reset (we re-PATCH from 0 after 412), trace_checksum and trace_size (final PUT carries both),
 * cancelable (Job-Status canceled/failed aborts the job), cancel_gracefully (canceling → onCancel, so
 * after_script runs).
 */
export const NETWORK_FEATURES: readonly RunnerFeature[] = [
  'trace_reset',
  'trace_checksum',
  'trace_size',
  'cancelable',
  'cancel_gracefully',
];

export interface NetworkFeatureOptions {
  /**
   * Off by default. gitlab-runner advertises it, but it only pays when the `running` PUT is deferred
   * until the machine is ready; we acknowledge right after the 201, and with the feature on, a lost
   * acknowledgement leaves the job pending-and-assigned (Rails has no re-queue timeout yet) and adds a
   * 409 path on the acknowledgement. Turn it on only together with a deferred acknowledgement.
   */
  twoPhaseJobCommit?: boolean;
  /** Off by default: only when the job layer really passes `inputs` through. */
  jobInputs?: boolean;
}

/** The full map (every known feature present, true or false, like gitlab-runner sends): network
 *  features, plus those the executor passes in. */
export function buildFeatures(executorFeatures: Iterable<RunnerFeature>, options: NetworkFeatureOptions = {}): FeatureMap {
  const on = new Set<RunnerFeature>([...NETWORK_FEATURES, ...executorFeatures]);
  if (options.twoPhaseJobCommit) on.add('two_phase_job_commit');
  else on.delete('two_phase_job_commit');
  if (options.jobInputs) on.add('job_inputs');
  else on.delete('job_inputs');
  const map = {} as FeatureMap;
  for (const f of KNOWN_FEATURES) map[f] = on.has(f);
  return map;
}
