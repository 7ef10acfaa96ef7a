// Public types of the strict fake GitLab: what tests write (JobSpec, options, faults) and what they read
// back (JobView, RequestLogEntry). Internal records live in records.ts.
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';

export type JobState =
  | 'created' // waiting for earlier stages of its pipeline
  | 'pending'
  | 'running'
  | 'canceling'
  | 'success'
  | 'failed'
  | 'canceled'
  | 'skipped'; // an earlier stage failed or was canceled

export const TERMINAL_STATES: readonly JobState[] = ['success', 'failed', 'canceled', 'skipped'];

export interface VariableSpec {
  value: string;
  /** A project CI/CD variable that GitLab masks; Rails refuses values under 8 chars or outside its charset. */
  masked?: boolean;
  file?: boolean;
  raw?: boolean;
}

export interface ImageSpec {
  name: string;
  alias?: string;
  entrypoint?: string[];
  command?: string[];
  pull_policy?: string[];
  variables?: Record<string, string>;
}

export interface ArtifactsSpec {
  name?: string;
  paths?: string[];
  exclude?: string[];
  untracked?: boolean;
  when?: 'on_success' | 'on_failure' | 'always';
  expire_in?: string;
  reports?: { junit?: string[]; dotenv?: string[] };
}

export interface CacheSpec {
  key?: string;
  paths?: string[];
  untracked?: boolean;
  policy?: 'pull-push' | 'pull' | 'push';
  when?: 'on_success' | 'on_failure' | 'always';
  fallback_keys?: string[];
  /** Skips GitLab's `-protected` / `-non_protected` key suffix. */
  unprotect?: boolean;
}

/** A job as a test describes it: a friendly subset of .gitlab-ci.yml. */
export interface JobSpec {
  name: string;
  stage?: string; // default "test"
  script: string[];
  before_script?: string[];
  after_script?: string[];
  variables?: Record<string, string | VariableSpec>;
  timeout?: number; // seconds
  image?: string | ImageSpec;
  services?: Array<string | ImageSpec>;
  artifacts?: ArtifactsSpec;
  cache?: CacheSpec | CacheSpec[];
  /** Names of jobs in earlier stages; default: every job of every earlier stage (GitLab's default). */
  dependencies?: string[];
  git_depth?: number; // becomes git_info.depth and GIT_DEPTH
  git_strategy?: 'fetch' | 'clone' | 'none' | 'empty'; // becomes GIT_STRATEGY
  /** `{ exit_codes }` requires the runner feature return_exit_code. */
  allow_failure?: boolean | { exit_codes: number[] };
}

export interface PipelineOptions {
  /** Branch or tag; default: the project's default branch. */
  ref?: string;
  refType?: 'branch' | 'tag';
  /** Stage order; default: order of first appearance in the job list. */
  stages?: string[];
}

export type FileContent = string | { content: string; executable?: boolean } | null; // null deletes

export interface ProjectInfo {
  id: number;
  path: string; // "group/app"
  name: string;
  defaultBranch: string;
  sha: string; // head of the default branch
  /** Clone URL without credentials (needs `gitlab-ci-token:<job token>` Basic auth). */
  httpUrl: string;
}

export interface PipelineInfo {
  id: number;
  projectId: number;
  ref: string;
  sha: string;
  jobIds: number[];
}

export interface JobUpdateRecord {
  at: number;
  state: string;
  failureReason?: string;
  exitCode?: number;
  output?: { checksum?: string; bytesize?: number };
  status: number; // what the fake answered
}

export interface TracePatchRecord {
  at: number;
  start: number;
  length: number;
  status: number;
}

export interface StoredArtifact {
  type: string;
  format: string;
  filename: string;
  expireIn?: string;
  bytes: Buffer;
  uploadedAt: number;
}

export interface JobView {
  id: number;
  name: string;
  stage: string;
  pipelineId: number;
  projectId: number;
  token: string;
  state: JobState;
  failureReason?: string;
  exitCode?: number;
  runnerId?: number;
  /** The exact 201 body sent, once assigned. */
  payload?: JobPayload;
  trace: Buffer;
  traceText: string;
  updates: JobUpdateRecord[];
  patches: TracePatchRecord[];
  artifacts: StoredArtifact[];
  queuedAt?: number;
  startedAt?: number;
  finishedAt?: number;
}

export interface PipelineView {
  id: number;
  status: 'created' | 'pending' | 'running' | 'success' | 'failed' | 'canceled';
  jobs: JobView[];
}

export interface RequestLogEntry {
  at: number;
  method: string;
  path: string;
  /** Query string with token parameters redacted. */
  query: string;
  status?: number;
  durationMs?: number;
  /** Request headers of interest, tokens redacted. */
  headers: Record<string, string>;
  /** Response headers of interest (Job-Status, Range, X-GitLab-*). */
  responseHeaders: Record<string, string>;
}

export type JobRequestFault =
  | number
  | { status: number; retryAfterS?: number; rateLimitResetTime?: string; contentType?: string };

/** Faults are queues consumed in order; `forJob` scopes the job-level ones of one call to a job id. */
export interface FaultSpec {
  /** Answers for the next POST /jobs/request calls (e.g. 503, {status: 429, retryAfterS: 1}). A `201` entry
   *  with `contentType` is used on the next assignment and serves the job with that Content-Type (check 4). */
  jobRequest?: JobRequestFault[];
  /** Statuses for the next trace PATCHes; nothing is stored. */
  tracePatch?: number[];
  /** A PATCH starting at one of these offsets gets one 416 with `Range: 0-<stored>`. */
  trace416AtOffset?: number[];
  /** Answer 202 (with X-GitLab-Trace-Update-Interval) to the next N final PUTs. */
  finalPut202?: number;
  /** Statuses for the next final PUTs (e.g. 500), state not applied. 412 also empties the stored trace,
   *  so the runner must re-PATCH from 0 (check 19). */
  finalPut?: number[];
  /** Statuses for the next artifact uploads (e.g. 503, 503, or 413). */
  artifactUpload?: number[];
  /** Statuses for the next artifact downloads. */
  artifactDownload?: number[];
  /** Changes X-GitLab-Trace-Update-Interval from now on. */
  traceUpdateIntervalS?: number;
  forJob?: number;
}

export interface FakeGitLabOptions {
  logger?: Logger;
  clock?: { now(): number };
  /** X-GitLab-Trace-Update-Interval (default 3: "someone is watching the job page"). */
  traceUpdateIntervalS?: number;
  /** Workhorse long polling on jobs/request; 0 (default) answers 204 at once. */
  longPollMs?: number;
  /** The runner's check_interval, for the soft check 5 (default 3000). */
  checkIntervalMs?: number;
  /** forceSendInterval for check 14 (default 30000). */
  keepAliveMs?: number;
  /** Two-phase job commit when the runner advertises it (default false). */
  twoPhaseCommit?: boolean;
  /** Answer direct_download=true with a 302 to a second local URL (default false). */
  directDownloadRedirect?: boolean;
  /** Project default git depth (GitLab's default for new projects is 20). */
  defaultGitDepth?: number;
  /** Job timeout when the spec has none (default 3600 s). */
  defaultTimeoutS?: number;
  /** The runner's output_limit in bytes; enables check 25. */
  outputLimitBytes?: number;
  /** Instance max artifact size; bigger uploads get 413 (default 100 MiB). */
  maxArtifactBytes?: number;
  registrationToken?: string;
  /** Where bare repositories live; default a temp dir removed on stop(). */
  dataDir?: string;
}

export interface AddRunnerOptions {
  /** Default: a generated `glrt-` token. */
  token?: string;
  tokenExpiresAt?: Date | number | string;
  paused?: boolean;
  /** Clips runner_info.timeout (seconds). */
  maximumTimeout?: number;
  description?: string;
}

export interface RunnerInfo {
  id: number;
  token: string;
  tokenExpiresAt?: number;
  paused: boolean;
}
