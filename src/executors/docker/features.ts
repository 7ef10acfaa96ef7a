// Features the docker style provides, for `info.features` (docs/gitlab-protocol.md §2.4), as names for gitlab/'s
// buildFeatures. The network and script layers add their own (see ../features.ts).

export const DOCKER_EXECUTOR_FEATURES = [
  /** Jobs run in their own `image:`. */
  'image',
  /** `services:` start on the job's network under their aliases. */
  'services',
  /** Job variables reach the containers. */
  'variables',
  /** A service's own `variables:`. */
  'service_variables',
  /** `alias: "a, b"` gives a service several aliases. */
  'service_multiple_aliases',
  /** `docker: { platform, user }` of the job image and of services. */
  'image_executor_opts',
  'service_executor_opts',
  /** User steps (step_script, release, …) run in payload order. */
  'multi_build_steps',
  /** A script failure carries the script's exit code. */
  'return_exit_code',
] as const;

export type DockerExecutorFeature = (typeof DOCKER_EXECUTOR_FEATURES)[number];
