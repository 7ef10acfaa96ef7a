export { compileConfig, DEFAULT_RUNNER, parseConfigText } from './compile.js';
export type { DockerStyleConfig, Ec2ProviderConfig, EcrConfig, ExecutorConfig, FargateProviderConfig, FleetConfig, LeaseConfig, LocalProviderConfig, PullPolicy, RoutingRules, RunnerConfig, S3CacheConfig } from './compile.js';
export { parseDuration, parseSize } from './units.js';
