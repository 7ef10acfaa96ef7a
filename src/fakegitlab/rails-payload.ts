// The 201 body of POST /jobs/request exactly as GitLab Rails renders it on the wire (Grape entities under
// lib/api/entities/ci/job_request/ over Ci::BuildRunnerPresenter): an entity `expose` of an unset value is
// rendered as `null`, not left out. Only `artifacts[].untracked` / `artifacts[].exclude` (expose_nil: false),
// `dependencies[].artifacts_file` (`if:` available artifacts), variables' `file` / `raw` (only when true) and
// `steps` (absent for `run:` jobs) are ever left out. This is the fake's wire type; it deliberately does not
// reuse src/core/job.ts, which is the coordinator's normalised view with no nulls.
// Sources: see test/fixtures/gitlab/README.md.

/** Gitlab::Ci::Variables::Collection::Item#to_runner_variable. `value` is nil for e.g. CI_PIPELINE_NAME
 *  without workflow:name, CI_PROJECT_DESCRIPTION without a description, CI_RUNNER_DESCRIPTION. */
export interface RailsVariable {
  key: string;
  value: string | null;
  public: boolean;
  masked: boolean;
  /** Present only when true. */
  file?: true;
  /** Present only when true. */
  raw?: true;
}

/** Gitlab::Ci::Build::Image#build_variables: a service's own `variables:`, key and value only. */
export interface RailsServiceVariable {
  key: string;
  value: string;
}

/** Entities::Ci::JobRequest::Port over Gitlab::Ci::Build::Port (defaults: protocol http, name default_port). */
export interface RailsPort {
  number: number;
  protocol: string;
  name: string;
}

/** `image:docker:` / `image:kubernetes:` from .gitlab-ci.yml; `{}` when none. gitlab-runner reads `user` as a
 *  string or an integer (StringOrInt64, runner 18.1+). */
export interface RailsExecutorOpts {
  docker?: { platform?: string; user?: string | number };
  kubernetes?: { user?: string | number };
}

/** Entities::Ci::JobRequest::Image: name, entrypoint, ports, executor_opts, pull_policy (no alias/command). */
export interface RailsImage {
  name: string;
  entrypoint: string[] | null;
  ports: RailsPort[];
  executor_opts: RailsExecutorOpts;
  pull_policy: string[] | null;
}

/** Entities::Ci::JobRequest::Service: the image fields plus alias, command, variables. */
export interface RailsService extends RailsImage {
  /** One string; several aliases are separated by commas or spaces. */
  alias: string | null;
  command: string[] | null;
  /** [] for a service written as a hash without variables; null only where Build::Image got a bare string
   *  (factories, older GitLab). */
  variables: RailsServiceVariable[] | null;
}

export type RailsWhen = 'on_success' | 'on_failure' | 'always';

/** Entities::Ci::JobRequest::Step over Gitlab::Ci::Build::Step. */
export interface RailsStep {
  name: string;
  script: string[];
  timeout: number | null;
  when: RailsWhen;
  allow_failure: boolean;
}

/** Entities::Ci::JobRequest::Hook over Gitlab::Ci::Build::Hook. */
export interface RailsHook {
  name: string;
  script: string[];
}

/** Entities::Ci::JobRequest::Artifacts over BuildRunnerPresenter::BuildArtifact. The archive entry carries the
 *  job's `artifacts:` keys as written (null when unwritten); report entries are `.compact`ed, so their
 *  `expire_in` is null when the job has none. */
export interface RailsArtifact {
  name: string | null;
  /** Left out when nil (expose_nil: false). */
  untracked?: boolean;
  paths: string[] | null;
  /** Left out when nil or empty. */
  exclude?: string[];
  when: RailsWhen | null;
  expire_in: string | null;
  artifact_type: string;
  artifact_format: string;
}

/** Entities::Ci::JobRequest::Cache over Ci::Build#cache (the cache entry's config value). */
export interface RailsCache {
  /** Unexpanded, with `-<cache index>` and `-protected` / `-non_protected` suffixes appended. */
  key: string;
  /** null when the job did not write `untracked:`. */
  untracked: boolean | null;
  /** null when the job did not write `paths:`. */
  paths: string[] | null;
  /** `pull-push` by default; since GitLab 16.1 also a `$VARIABLE`, passed unexpanded. */
  policy: string;
  when: RailsWhen;
  fallback_keys: string[];
}

/** Entities::Ci::JobRequest::Credentials (GitLab registry, dependency proxy). */
export interface RailsCredential {
  type: string;
  url: string;
  username: string;
  password: string;
}

/** Entities::Ci::JobRequest::Dependency. `token` is the RUNNING job's token (ci_expose_running_job_token_for_artifacts). */
export interface RailsDependency {
  id: number;
  name: string;
  token: string;
  /** Present only when the dependency has available artifacts (Entities::Ci::JobArtifactFile). */
  artifacts_file?: { filename: string; size: number };
}

/** Entities::Ci::JobRequest::JobInfo. */
export interface RailsJobInfo {
  id: number;
  name: string;
  stage: string;
  pipeline_id: number;
  project_id: number;
  project_name: string;
  project_full_path: string;
  namespace_id: number;
  root_namespace_id: number;
  organization_id: number;
  /** Gitlab::GlobalAnonymousId: strings. */
  instance_id: string;
  instance_uuid: string;
  user_id: number | null;
  scoped_user_id: number | null;
  time_in_queue_seconds: number | null;
  /** "+Inf" unless the runner is an instance runner. */
  project_jobs_running_on_instance_runners_count: string;
  queue_size: number;
  queue_depth: number;
}

/** Entities::Ci::JobRequest::GitInfo. */
export interface RailsGitInfo {
  repo_url: string;
  ref: string;
  sha: string;
  before_sha: string;
  ref_type: 'branch' | 'tag';
  refspecs: string[];
  depth: number;
  repo_object_format: 'sha1' | 'sha256';
  protected: boolean | null;
}

/** Entities::Ci::JobRequest::RunnerInfo. */
export interface RailsRunnerInfo {
  /** The runner's UUID (newer GitLab). */
  uuid: string | null;
  timeout: number;
  /** null without a session server. */
  runner_session_url: string | null;
}

/** Ci::Build#features. */
export interface RailsFeatures {
  trace_sections: boolean;
  failure_reasons: string[];
  token_mask_prefixes?: string[];
}

/** Entities::Ci::JobRequest::Response, keys in the entity's order. A fixture overlay (JobSpec.payload) may add
 *  keys this type does not list (e.g. `run`, `secrets`, `policy_options`) or put `null` where Rails puts a list. */
export interface RailsJobPayload {
  id: number;
  token: string;
  allow_git_fetch: boolean;
  job_info: RailsJobInfo;
  git_info: RailsGitInfo;
  runner_info: RailsRunnerInfo;
  variables: RailsVariable[];
  /** Absent for a `run:` (CI steps) job. */
  steps?: RailsStep[] | null;
  hooks: RailsHook[] | null;
  image: RailsImage | null;
  services: RailsService[] | null;
  /** null when the job has no `artifacts:`; [] when it has one without paths, untracked or reports. */
  artifacts: RailsArtifact[] | null;
  cache: RailsCache[] | null;
  credentials: RailsCredential[] | null;
  features: RailsFeatures;
  dependencies: RailsDependency[] | null;
  /** A `run:` job's steps as a JSON string. */
  run?: string;
}
