// The job payload GitLab returns from POST /jobs/request (201). Field names follow GitLab's JSON exactly;
// only what fleetrunner reads is typed strictly, the rest stays optional. Reference §2.3.

export interface JobVariable {
  key: string;
  value: string;
  public?: boolean;
  masked?: boolean;
  file?: boolean;
  raw?: boolean;
}

export interface JobStep {
  name: string; // "script", "release", "after_script", …
  script: string[];
  timeout?: number; // seconds
  when?: 'on_success' | 'on_failure' | 'always';
  allow_failure?: boolean;
}

export interface JobImage {
  name: string;
  alias?: string;
  entrypoint?: string[];
  command?: string[];
  ports?: Array<{ number: number; protocol?: string; name?: string }>;
  variables?: JobVariable[];
  pull_policy?: string[];
  executor_opts?: { docker?: { platform?: string; user?: string } };
}

export interface JobArtifact {
  name?: string;
  untracked?: boolean;
  paths?: string[];
  exclude?: string[];
  when?: 'on_success' | 'on_failure' | 'always';
  expire_in?: string;
  artifact_type?: string;
  artifact_format?: string;
}

export interface JobCache {
  key: string;
  untracked?: boolean;
  paths?: string[];
  policy?: 'pull-push' | 'pull' | 'push';
  when?: 'on_success' | 'on_failure' | 'always';
  fallback_keys?: string[];
}

export interface JobDependency {
  id: number;
  name: string;
  token: string;
  artifacts_file?: { filename: string; size: number };
}

export interface JobCredential {
  type: string;
  url: string;
  username: string;
  password: string;
}

export interface JobPayload {
  id: number;
  token: string;
  allow_git_fetch?: boolean;
  job_info: {
    id?: number;
    name: string;
    stage?: string;
    project_id: number;
    project_name?: string;
    project_full_path?: string;
    pipeline_id?: number;
    [key: string]: unknown;
  };
  git_info: {
    repo_url: string;
    ref: string;
    sha: string;
    before_sha?: string;
    ref_type?: 'branch' | 'tag';
    refspecs?: string[];
    depth?: number;
    repo_object_format?: 'sha1' | 'sha256';
    protected?: boolean;
  };
  runner_info: { timeout?: number; runner_session_url?: string; uuid?: string };
  variables: JobVariable[];
  steps?: JobStep[];
  image?: JobImage | null;
  services?: JobImage[] | null;
  artifacts?: JobArtifact[] | null;
  cache?: JobCache[] | null;
  credentials?: JobCredential[] | null;
  dependencies?: JobDependency[] | null;
  features?: { trace_sections?: boolean; failure_reasons?: string[]; token_mask_prefixes?: string[] };
  hooks?: Array<{ name: string; script: string[] }> | null;
  run?: string;
  [key: string]: unknown;
}
