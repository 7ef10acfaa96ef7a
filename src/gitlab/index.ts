// GitLab's runner API client: transport (requester + retry), endpoints, identity and one job's trace session.

export * from './api-types.js';
export { backoffDelayMs, type BackoffPolicy } from './backoff.js';
export { GitLabApiError, TokenModelError, isGitLabApiError, isGitLabForbidden, type GitLabErrorKind } from './errors.js';
export { mapFailureReason, ALWAYS_SUPPORTED_FAILURE_REASONS } from './failure-reasons.js';
export { buildFeatures, KNOWN_FEATURES, NETWORK_FEATURES, type FeatureMap, type NetworkFeatureOptions, type RunnerFeature } from './features.js';
export { buildRunnerInfo, buildUserAgent, goArch, registrationInfo, type RunnerInfo, type RunnerInfoParams, type UserAgentParams } from './info.js';
export {
  JobTraceSession,
  DEFAULT_TRACE_TIMING,
  type AckResult,
  isDelivered,
  isTransientStatus,
  type FinishResult,
  type JobTraceSessionOptions,
  type TraceAbortReason,
  type TraceTiming,
} from './job-trace-session.js';
export { parseJobPayload, jobStub, type JobPayloadParse } from './job-payload.js';
export { LastUpdateStore, LAST_UPDATE_HEADER } from './last-update.js';
export { redact, MASK } from './redact.js';
export {
  FetchRequester,
  isJsonResponse,
  responseJson,
  responseText,
  type FetchRequesterOptions,
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  type Requester,
} from './requester.js';
export { RetryRequester, isRetriedStatus, headerWaitMs, DEFAULT_RETRY_BACKOFF, type RetryRequesterOptions } from './retry-requester.js';
export { createRunnerApi, type CreateRunnerApiOptions } from './create-runner-api.js';
export { RunnerApi, MAX_TRACE_PATCH_BYTES, normaliseBaseUrl, type RunnerApiOptions } from './runner-api.js';
export { RunnerHealth, type RunnerHealthOptions } from './runner-health.js';
export {
  RunnerIdentity,
  rotationDueAt,
  TOKEN_ROTATION_FACTOR,
  type RunnerIdentityOptions,
  type RunnerTokenState,
  type TokenRotatedEvent,
} from './runner-identity.js';
export { deploymentIdentity, deploymentKeySecret, isValidSystemId, type DeploymentIdentity } from './system-id.js';
export { isRunnerAuthenticationToken, tokenModel, type TokenModel } from './token-model.js';
