export { compileConfig, parseConfigText } from './compile.js';
export type { ExecutorConfig, FleetConfig, LocalProviderConfig, RoutingRules } from './compile.js';
export { parseDuration, parseSize } from './units.js';
