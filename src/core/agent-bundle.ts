// The agent bundle's layout: the contract between the fargate provider's task definitions and the helper
// image that delivers the bundle (src/agent/bundle.ts builds it; docs/architecture.md says why).

/** Where the task's shared volume is mounted in the job's container (and so the wrappers' interpreter). */
export const BUNDLE_MOUNT = '/fleetrunner';
/** Where the helper image holds the bundle; its entry point copies it into the shared volume. */
export const HELPER_BUNDLE_DIR = '/bundle';
/** The helper container's entry point: a static busybox copies the bundle, then exits 0 (the job container
 *  waits for that: dependsOn SUCCESS). */
export const HELPER_ENTRYPOINT: readonly string[] = [`${HELPER_BUNDLE_DIR}/libexec/busybox`, 'cp', '-a', `${HELPER_BUNDLE_DIR}/.`, `${BUNDLE_MOUNT}/`];
/** The job container's entry point: the agent, through the bundle's loader (no shell or libc of the image). */
export const AGENT_ENTRYPOINT: readonly string[] = [`${BUNDLE_MOUNT}/bin/agent`];
/** Work directories the agent creates under the mount: builds, cache, fleetrunner's state. */
export const AGENT_BUILDS_DIR = `${BUNDLE_MOUNT}/work/builds`;
export const AGENT_CACHE_DIR = `${BUNDLE_MOUNT}/work/cache`;
export const AGENT_STATE_DIR = `${BUNDLE_MOUNT}/work/state`;
