export { FargateProvider, type FargateProviderOptions } from './fargate-provider.js';
export { decideTaskSize, isValidFargateSize, validMemoryFor, FARGATE_CPU_UNITS, type TaskSize } from '../../core/fargate-task-size.js';
export { classifyEcsError, classifyRunFailure } from './classify-error.js';
