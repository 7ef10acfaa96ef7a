// Public types of the strict fake GitLab: what tests write (JobSpec, options, faults) and what they read
// back (JobView, RequestLogEntry). Internal records live in records.ts.
import type { Logger } from '../core/logger.js';
import type { RailsJobPayload } from './rails-payload.js';

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

/** `image:` or a `services:` entry written as a hash. Unset keys are rendered as Rails renders them
 *  (`null`, `[]` or `{}`); `alias`, `command` and `variables` only exist on services. */
export interface ImageSpec {
  name: string;
  /** Services only. Several aliases: separated by commas or spaces (one string, as in .gitlab-ci.yml). */
  alias?: string;
  entrypoint?: string[];
  /** Services only. */
  command?: string[];
  /** One policy or a list; Rails always sends a list. */
  pull_policy?: string | string[];
  /** Services only: the service's own `variables:`. */
  variables?: Record<string, string>;
  /** Services only (Rails requires an alias with ports). A bare number gets protocol http, name default_port. */
  ports?: Array<number | { number: number; protocol?: 'http' | 'https'; name?: string }>;
  /** `image:docker:` → executor_opts.docker (`user` may be an integer). */
  docker?: { platform?: string; user?: string | number };
  /** `image:kubernetes:` → executor_opts.kubernetes. */
  kubernetes?: { user?: string | number };
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
  /** Since GitLab 16.1 also a `$VARIABLE`, which Rails passes unexpanded (the runner expands it). */
  policy?: 'pull-push' | 'pull' | 'push' | `$${string}`;
  when?: 'on_success' | 'on_failure' | 'always';
  fallback_keys?: string[];
  /** `cache:unprotect`: a protected ref gets the `-non_protected` key suffix too. */
  unprotect?: boolean;
}

/** A job as a test describes it: a friendly subset of .gitlab-ci.yml. */
export interface JobSpec {
  name: string;
  stage?: string; // default "test"
  /** Required, unless `payload` carries `steps` (or `run`) to be served instead. */
  script?: string[];
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
  /** `tags:`: only a runner with all of them takes the job; without tags, only runners that run untagged jobs. */
  tags?: string[];
  git_depth?: number; // becomes git_info.depth and GIT_DEPTH
  git_strategy?: 'fetch' | 'clone' | 'none' | 'empty'; // becomes GIT_STRATEGY
  /** `{ exit_codes }` requires the runner feature return_exit_code. */
  allow_failure?: boolean | { exit_codes: number[] };
  /** `hooks:` → `hooks[]` (pre_get_sources_script / post_get_sources_script). */
  hooks?: { pre_get_sources_script?: string[]; post_get_sources_script?: string[] };
  /**
   * Fields of a Rails-rendered 201 body laid over the fake's own rendering (e.g. a contract fixture from
   * test/fixtures/gitlab/). Top-level keys replace the fake's, except what the fake must own for the job to
   * really run:
   * - `id`, `token`, `git_info`, `features`, `dependencies`: always the fake's (the fixture's are ignored);
   * - `job_info`: the fixture's keys laid over the fake's, but the identity keys stay the fake's (id, name,
   *   stage, pipeline_id, project_id, project_name, project_full_path, namespace_id, root_namespace_id,
   *   organization_id, instance_id, instance_uuid, user_id);
   * - `runner_info`: likewise, but `timeout` stays the fake's;
   * - `variables`: the fixture's are appended after the fake's, except those whose key the fake already
   *   rendered (CI_JOB_TOKEN, CI_PIPELINE_NAME, …: the fake's entry stays and the fixture's is dropped);
   * - `steps`: the fixture's value (or no `steps` key, if the fixture has none) only when this spec has no
   *   `script`; with a `script` the fake's steps are served;
   * - `credentials`: the fixture's, each `password` set to the job token as Rails does.
   * Everything else (image, services, artifacts, cache, hooks, allow_git_fetch, run, unknown keys) is served
   * exactly as given, nulls included. Runner features the served artifacts/cache/steps need (§2.4) are
   * required at assignment as for the fake's own rendering.
   */
  payload?: Record<string, unknown>;
}

export interface PipelineOptions {
  /** Branch or tag; default: the project's default branch. */
  ref?: string;
  refType?: 'branch' | 'tag';
  /** Stage order; default: order of first appearance in the job list. */
  stages?: string[];
  /** `workflow:name`: CI_PIPELINE_NAME's value. Without it, CI_PIPELINE_NAME is sent with value `null`. */
  name?: string;
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
  /** The exact 201 body sent, once assigned (Rails' wire shape, nulls included). */
  payload?: RailsJobPayload;
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
  /** The first final PUT (state success/failed) starts an outage: that PUT and every /api/v4/jobs* call for
   *  `durationMs` get `status` (e.g. 502), nothing stored, as when GitLab is down behind its load balancer. */
  outageOnFinalPut?: { status: number; durationMs: number };
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
  /** CI_RUNNER_DESCRIPTION; without one Rails (and the fake) sends `null`. */
  description?: string;
  /** The runner's tags: it takes a tagged job only if it has every one of the job's tags (Rails). */
  tags?: string[];
  /** Whether it takes jobs without tags (default true, as GitLab's default for a new runner). */
  runUntagged?: boolean;
}

export interface RunnerInfo {
  id: number;
  token: string;
  tokenExpiresAt?: number;
  paused: boolean;
}
