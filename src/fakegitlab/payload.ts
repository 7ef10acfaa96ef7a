// The 201 body of POST /jobs/request, shaped as Rails' BuildRunnerPresenter / JobRequest::Response entity
// shapes it (reference §2.3), and the runner features a job needs (§2.4 table).
import type { JobArtifact, JobCache, JobDependency, JobImage, JobPayload, JobStep } from '../core/job.js';
import { GITLAB_FAILURE_REASONS } from './failure-reasons.js';
import type { JobRecord, PipelineRecord, ProjectRecord, RunnerRecord } from './records.js';
import type { CacheSpec, ImageSpec, JobSpec } from './types.js';
import { buildVariables, isProtected } from './variables.js';

export interface PayloadInput {
  job: JobRecord;
  pipeline: PipelineRecord;
  project: ProjectRecord;
  runner: RunnerRecord;
  dependencies: JobRecord[];
  baseUrl: string;
  defaultGitDepth: number;
  defaultTimeoutS: number;
  now: number;
  sessionUrl?: string;
  queueSize: number;
  projectRunningCount: number;
}

/** Rails `Ci::Build::RUNNER_FEATURES`: features a job needs from the runner, with the reason. */
export function requiredFeatures(spec: JobSpec): Array<{ feature: string; why: string }> {
  const out: Array<{ feature: string; why: string }> = [];
  const reports = spec.artifacts?.reports;
  if (reports && Object.values(reports).some((p) => p && p.length > 0)) {
    out.push({ feature: 'upload_multiple_artifacts', why: 'artifacts:reports' });
  }
  if (spec.artifacts?.exclude?.length) out.push({ feature: 'artifacts_exclude', why: 'artifacts:exclude' });
  if (typeof spec.allow_failure === 'object') out.push({ feature: 'return_exit_code', why: 'allow_failure:exit_codes' });
  if (cacheList(spec.cache).some((c) => c.fallback_keys?.length)) {
    out.push({ feature: 'fallback_cache_keys', why: 'cache:fallback_keys' });
  }
  return out;
}

export function gitDepthOf(spec: JobSpec, defaultDepth: number): number {
  return spec.git_depth ?? defaultDepth;
}

export function repoUrl(baseUrl: string, project: ProjectRecord, token: string): string {
  const u = new URL(baseUrl);
  return `${u.protocol}//gitlab-ci-token:${token}@${u.host}/${project.path}.git`;
}

export function buildPayload(input: PayloadInput): JobPayload {
  const { job, pipeline, project, runner } = input;
  const depth = gitDepthOf(job.spec, input.defaultGitDepth);
  let timeout = job.spec.timeout ?? input.defaultTimeoutS;
  if (runner.maximumTimeout !== undefined) timeout = Math.min(timeout, runner.maximumTimeout);
  const url = repoUrl(input.baseUrl, project, job.token);
  const refspecs = [`+refs/pipelines/${pipeline.id}:refs/pipelines/${pipeline.id}`];
  if (depth > 0) {
    refspecs.push(
      pipeline.refType === 'tag'
        ? `+refs/tags/${pipeline.ref}:refs/tags/${pipeline.ref}`
        : `+refs/heads/${pipeline.ref}:refs/remotes/origin/${pipeline.ref}`,
    );
  } else {
    refspecs.push('+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*');
  }
  const steps: JobStep[] = [
    {
      name: 'script',
      script: [...(job.spec.before_script ?? []), ...job.spec.script],
      timeout,
      when: 'on_success',
      allow_failure: job.spec.allow_failure === true,
    },
  ];
  if (job.spec.after_script?.length) {
    steps.push({ name: 'after_script', script: job.spec.after_script, timeout, when: 'always', allow_failure: true });
  }
  return {
    id: job.id,
    token: job.token,
    allow_git_fetch: true,
    job_info: {
      id: job.id,
      name: job.name,
      stage: job.stage,
      project_id: project.id,
      project_name: project.name,
      project_full_path: project.path,
      namespace_id: project.id + 1000,
      root_namespace_id: project.id + 1000,
      organization_id: 1,
      instance_id: 1,
      instance_uuid: 'fake-gitlab-instance',
      user_id: 1,
      scoped_user_id: null,
      time_in_queue_seconds: Math.max(0, Math.floor((input.now - (job.queuedAt ?? input.now)) / 1000)),
      project_jobs_running_on_instance_runners_count: String(input.projectRunningCount),
      queue_size: input.queueSize,
      queue_depth: input.queueSize,
      pipeline_id: pipeline.id,
    },
    git_info: {
      repo_url: url,
      ref: pipeline.ref,
      sha: pipeline.sha,
      before_sha: pipeline.beforeSha,
      ref_type: pipeline.refType,
      refspecs,
      depth,
      repo_object_format: 'sha1',
      protected: isProtected(project, pipeline),
    },
    // Rails sends null without a session server; core's type only knows string | absent.
    runner_info: { timeout, runner_session_url: (input.sessionUrl ?? null) as string | undefined },
    variables: buildVariables({ job, pipeline, project, runner, baseUrl: input.baseUrl, gitDepth: depth, repoUrl: url }),
    steps,
    image: job.spec.image === undefined ? null : image(job.spec.image),
    services: (job.spec.services ?? []).map(image),
    artifacts: artifacts(job.spec),
    cache: cacheList(job.spec.cache).map((c) => cache(c, isProtected(project, pipeline))),
    credentials: [],
    dependencies: input.dependencies.map((d) => dependency(d, job.token)),
    features: { trace_sections: true, failure_reasons: [...GITLAB_FAILURE_REASONS] },
  };
}

function image(spec: string | ImageSpec): JobImage {
  const s = typeof spec === 'string' ? { name: spec } : spec;
  const out: JobImage = { name: s.name };
  if (s.alias !== undefined) out.alias = s.alias;
  if (s.entrypoint) out.entrypoint = s.entrypoint;
  if (s.command) out.command = s.command;
  out.ports = [];
  if (s.pull_policy) out.pull_policy = s.pull_policy;
  if (s.variables) out.variables = Object.entries(s.variables).map(([key, value]) => ({ key, value, public: true, masked: false }));
  return out;
}

function artifacts(spec: JobSpec): JobArtifact[] | null {
  const a = spec.artifacts;
  if (!a) return null;
  const list: JobArtifact[] = [];
  if (a.paths?.length || a.untracked) {
    const main: JobArtifact = {
      name: a.name,
      untracked: a.untracked ?? false,
      paths: a.paths ?? [],
      when: a.when ?? 'on_success',
      expire_in: a.expire_in,
      artifact_type: 'archive',
      artifact_format: 'zip',
    };
    if (a.exclude?.length) main.exclude = a.exclude;
    list.push(main);
  }
  const reports: Array<[string, string[] | undefined, string, string]> = [
    ['junit', a.reports?.junit, 'gzip', 'junit.xml.gz'],
    ['dotenv', a.reports?.dotenv, 'gzip', '.env.gz'],
  ];
  for (const [type, paths, format, name] of reports) {
    if (!paths?.length) continue;
    list.push({ name, untracked: false, paths, when: 'always', expire_in: a.expire_in, artifact_type: type, artifact_format: format });
  }
  return list;
}

export function cacheList(c: CacheSpec | CacheSpec[] | undefined): CacheSpec[] {
  return c === undefined ? [] : Array.isArray(c) ? c : [c];
}

function cache(c: CacheSpec, protectedRef: boolean): JobCache {
  // Rails separates caches of protected and unprotected refs by a key suffix (ci_separated_caches).
  const key = c.key ?? 'default';
  const suffix = c.unprotect ? '' : protectedRef ? '-protected' : '-non_protected';
  return {
    key: `${key}${suffix}`,
    untracked: c.untracked ?? false,
    paths: c.paths ?? [],
    policy: c.policy ?? 'pull-push',
    when: c.when ?? 'on_success',
    fallback_keys: c.fallback_keys ?? [],
  };
}

function dependency(dep: JobRecord, runningJobToken: string): JobDependency {
  // Current GitLab hands out the RUNNING job's token for dependency downloads (reference §2.3).
  const out: JobDependency = { id: dep.id, name: dep.name, token: runningJobToken };
  const archive = dep.artifacts.find((a) => a.type === 'archive');
  if (archive) out.artifacts_file = { filename: archive.filename, size: archive.bytes.length };
  return out;
}
