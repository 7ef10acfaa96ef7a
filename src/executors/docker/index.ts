export { DOCKER_EXECUTOR_FEATURES, type DockerExecutorFeature } from './features.js';
export { DockerExecutor, type DockerExecutorOptions } from './docker-executor.js';
export type { DockerStyleSettings, PullPolicy, RegistryLogin } from './options.js';
export { derivedAliases, serviceAliases } from './aliases.js';
export { resolvePullPolicies, type PullPolicyDecision } from './pull-policy.js';
export { registryOf, repositoryOf, normalizeRegistry } from './image-ref.js';
export { JOB_LABEL, CONTAINER_DOCKER_CONFIG_DIR, buildContainerArgs, serviceContainerArgs, commandLine, type BuildContainer, type ServiceContainer } from './docker-args.js';
