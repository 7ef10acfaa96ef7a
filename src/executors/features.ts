// Features the shell executor itself provides, for `info.features` (docs/gitlab-protocol.md §2.4), as names to pass to
// gitlab/'s buildFeatures. The network layer (trace_*, cancelable, cancel_gracefully) and the script
// layer (jobs/: artifacts, cache, refspecs, …; runner/: masking) add their own.

export const SHELL_EXECUTOR_FEATURES = [
  /** gitlab-runner's shell executor marker: builds dir and cache live on a machine between jobs. */
  'shared',
  /** User steps (step_script, release, …) run in payload order. */
  'multi_build_steps',
  /** A script failure carries the script's exit code. */
  'return_exit_code',
] as const;

export type ShellExecutorFeature = (typeof SHELL_EXECUTOR_FEATURES)[number];
