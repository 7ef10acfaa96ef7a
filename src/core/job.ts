// The job payload GitLab returns from POST /jobs/request (201), as the rest of fleetrunner sees it: parsed
// and normalised once at the boundary (src/gitlab/job-payload.ts), so nothing here is ever `null`. Field
// names follow GitLab's JSON; where Rails may send `null`, `[]` or leave a key out, the type below holds the
// value gitlab-runner would use instead (empty string, empty list, undefined). See docs/gitlab-protocol.md.

export interface JobVariable {
  key: string;
  /** Rails may send `null`; it arrives here as "" (exported, set and empty), as gitlab-runner does. */
  value: string;
  public?: boolean;
  masked?: boolean;
  file?: boolean;
  raw?: boolean;
}

export interface JobStep {
  name: string; // "script", "release", "after_script", …
  script: string[];
  /** Seconds; undefined when GitLab sent none (the job timeout applies). */
  timeout?: number;
  when: 'on_success' | 'on_failure' | 'always';
  allow_failure: boolean;
}

export interface JobPort {
  number: number;
  /** "http" or "https"; GitLab's default is http. */
  protocol: string;
  name?: string;
}

/** `image:` or one entry of `services:`. Lists are empty where GitLab sent null or nothing. */
export interface JobImage {
  /** As GitLab sent it: it may still contain `$VARIABLES` (expanded by jobs/containers.ts). */
  name: string;
  /** Unset when null or empty. Services may list several, separated by commas or spaces. */
  alias?: string;
  /** Empty: the image's own entrypoint. `[""]` (GitLab's idiom) clears it. */
  entrypoint: string[];
  /** Empty: the image's own command. */
  command: string[];
  ports: JobPort[];
  /** A service's own `variables:`; empty for the job image. */
  variables: JobVariable[];
  /** Empty: the executor's configured policy. */
  pull_policy: string[];
  executor_opts: { docker: { platform?: string; user?: string } };
}

export type ArtifactWhen = 'on_success' | 'on_failure' | 'always';

export interface JobArtifact {
  name?: string;
  untracked: boolean;
  paths: string[];
  exclude: string[];
  when: ArtifactWhen;
  expire_in?: string;
  artifact_type: string;
  artifact_format: string;
}

export interface JobCache {
  key: string;
  untracked: boolean;
  paths: string[];
  /** As GitLab sent it: `pull`, `push`, `pull-push`, "" (= pull-push) or a `$VARIABLE` expanded when the job
   *  runs (GitLab 16.1+). jobs/cache-keys.ts resolves it and fails the job on anything else. */
  policy: string;
  when: ArtifactWhen;
  fallback_keys: string[];
}

export interface JobDependency {
  id: number;
  name: string;
  token: string;
  /** Unset when the dependency has no artifacts to download. */
  artifacts_file?: { filename: string; size: number };
}

export interface JobCredential {
  type: string;
  url: string;
  username: string;
  password: string;
}

export interface JobHook {
  name: string;
  script: string[];
}

export interface JobPayload {
  id: number;
  token: string;
  allow_git_fetch: boolean;
  job_info: {
    id?: number;
    name: string;
    stage: string;
    project_id: number;
    project_name: string;
    project_full_path: string;
    pipeline_id?: number;
  };
  git_info: {
    repo_url: string;
    ref: string;
    sha: string;
    before_sha: string;
    ref_type?: 'branch' | 'tag';
    refspecs: string[];
    /** 0: full clone. */
    depth: number;
    repo_object_format: 'sha1' | 'sha256';
    protected?: boolean;
  };
  runner_info: { timeout?: number; runner_session_url?: string };
  variables: JobVariable[];
  steps: JobStep[];
  /** Unset when the job has no `image:` (the executor's default applies). */
  image?: JobImage;
  services: JobImage[];
  artifacts: JobArtifact[];
  cache: JobCache[];
  credentials: JobCredential[];
  dependencies: JobDependency[];
  features: { trace_sections: boolean; failure_reasons?: string[]; token_mask_prefixes: string[] };
  hooks: JobHook[];
  /** A `run:` (CI steps) job sends this JSON string instead of `steps`. */
  run?: string;
}

/**
 * A job known only by its id and token: enough to acknowledge it, write into its trace and report its final
 * state, nothing that could run. Stands in for a payload that could not be read, and for a journal entry.
 */
export function jobStub(id: number, token: string, failureReasons?: string[]): JobPayload {
  const job: JobPayload = {
    id,
    token,
    allow_git_fetch: false,
    job_info: { name: '', stage: '', project_id: 0, project_name: '', project_full_path: '' },
    git_info: { repo_url: '', ref: '', sha: '', before_sha: '', refspecs: [], depth: 0, repo_object_format: 'sha1' },
    runner_info: {},
    variables: [],
    steps: [],
    services: [],
    artifacts: [],
    cache: [],
    credentials: [],
    dependencies: [],
    features: { trace_sections: false, token_mask_prefixes: [] },
    hooks: [],
  };
  if (failureReasons) job.features.failure_reasons = failureReasons;
  return job;
}
