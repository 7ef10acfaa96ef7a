// jobs/: a GitLab job payload → stage scripts. Pure: no I/O, no clock.

export { buildPlan, PLAN_FEATURES, DEFAULT_AFTER_SCRIPT_TIMEOUT_MS } from './plan.js';
export type { PlanContext, RunnerIdentity, CacheStore, PresignedCacheUrls } from './context.js';
export { cacheRequest, type CacheRequest, type CacheKeyUse } from './cache-keys.js';
export { UnsupportedJobError, isUnsupportedJob } from './errors.js';
export { expandVariables } from './expand.js';
export { debugModeEnabled } from './variables.js';
export { parseGoDuration } from './duration.js';
export { quote } from './quote.js';
export { ShellWriter } from './writer.js';
export { joinStages } from './join-stages.js';
export { jobContainers, splitAliases, type ContainerImage, type EnvVariable, type JobContainers } from './containers.js';
