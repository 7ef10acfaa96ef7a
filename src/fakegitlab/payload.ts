// The 201 body of POST /jobs/request exactly as Rails renders it (docs/gitlab-protocol.md §2.3): the
// JobRequest::Response entity over Ci::BuildRunnerPresenter, with `null` wherever Rails has nil (see
// rails-payload.ts for each field's source), an optional fixture overlay (JobSpec.payload), and the runner
// features a job needs (its §2.4 table).
import { GITLAB_FAILURE_REASONS } from './failure-reasons.js';
import type {
  RailsArtifact,
  RailsCache,
  RailsCredential,
  RailsDependency,
  RailsExecutorOpts,
  RailsHook,
  RailsImage,
  RailsJobPayload,
  RailsPort,
  RailsService,
  RailsStep,
  RailsVariable,
} from './rails-payload.js';
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

/** Gitlab::GlobalAnonymousId of the fake instance (strings, as Rails sends them). */
const INSTANCE_ID = '00000000-0000-4000-8000-00000000fa4e';
const INSTANCE_UUID = '00000000-0000-4000-8000-00000000fa4f';

/** Rails `Ci::Build::RUNNER_FEATURES`: features a job needs from the runner, with the reason. With a fixture
 *  overlay, what the served artifacts, cache and steps need counts too. */
export function requiredFeatures(spec: JobSpec): Array<{ feature: string; why: string }> {
  const out: Array<{ feature: string; why: string }> = [];
  const add = (feature: string, why: string): void => {
    if (!out.some((o) => o.feature === feature)) out.push({ feature, why });
  };
  const reports = spec.artifacts?.reports;
  if (reports && Object.values(reports).some((p) => p && p.length > 0)) add('upload_multiple_artifacts', 'artifacts:reports');
  if (spec.artifacts?.exclude?.length) add('artifacts_exclude', 'artifacts:exclude');
  if (typeof spec.allow_failure === 'object') add('return_exit_code', 'allow_failure:exit_codes');
  if (cacheList(spec.cache).some((c) => c.fallback_keys?.length)) add('fallback_cache_keys', 'cache:fallback_keys');
  const overlay = spec.payload;
  if (overlay) {
    const artifacts = Array.isArray(overlay.artifacts) ? (overlay.artifacts as Array<Record<string, unknown>>) : [];
    if (artifacts.some((a) => a && a.artifact_type !== undefined && a.artifact_type !== 'archive')) {
      add('upload_multiple_artifacts', 'artifacts:reports (fixture)');
    }
    if (artifacts.some((a) => Array.isArray(a?.exclude) && a.exclude.length > 0)) add('artifacts_exclude', 'artifacts:exclude (fixture)');
    const caches = Array.isArray(overlay.cache) ? (overlay.cache as Array<Record<string, unknown>>) : [];
    if (caches.some((c) => Array.isArray(c?.fallback_keys) && c.fallback_keys.length > 0)) {
      add('fallback_cache_keys', 'cache:fallback_keys (fixture)');
    }
    const steps = spec.script === undefined && Array.isArray(overlay.steps) ? (overlay.steps as Array<Record<string, unknown>>) : [];
    if (steps.some((s) => s?.name === 'release')) add('multi_build_steps', 'release (fixture)');
  }
  return out;
}

/** Why a spec cannot become a job (pipeline creation refuses it), or undefined. */
export function specError(spec: JobSpec): string | undefined {
  const p = spec.payload;
  if (p !== undefined && (p === null || typeof p !== 'object' || Array.isArray(p))) return 'payload must be an object';
  if (p?.variables !== undefined && p.variables !== null && !Array.isArray(p.variables)) return 'payload.variables must be a list or null';
  if (spec.script === undefined && !(p && ('steps' in p || 'run' in p))) return 'a job needs a script (or a payload with steps or run)';
  return undefined;
}

export function gitDepthOf(spec: JobSpec, defaultDepth: number): number {
  return spec.git_depth ?? defaultDepth;
}

export function repoUrl(baseUrl: string, project: ProjectRecord, token: string): string {
  const u = new URL(baseUrl);
  return `${u.protocol}//gitlab-ci-token:${token}@${u.host}/${project.path}.git`;
}

export function buildPayload(input: PayloadInput): RailsJobPayload {
  const own = renderOwn(input);
  const overlay = input.job.spec.payload;
  return overlay ? layOver(own, overlay, input.job) : own;
}

function renderOwn(input: PayloadInput): RailsJobPayload {
  const { job, pipeline, project, runner } = input;
  const spec = job.spec;
  const depth = gitDepthOf(spec, input.defaultGitDepth);
  let timeout = spec.timeout ?? input.defaultTimeoutS;
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
  // Gitlab::Ci::Build::Step: before_script + script, release, after_script (only when written).
  const steps: RailsStep[] = [
    {
      name: 'script',
      script: [...(spec.before_script ?? []), ...(spec.script ?? [])],
      timeout,
      when: 'on_success',
      allow_failure: spec.allow_failure === true,
    },
  ];
  if (spec.after_script) {
    steps.push({ name: 'after_script', script: spec.after_script, timeout, when: 'always', allow_failure: true });
  }
  const protectedRef = isProtected(project, pipeline);
  return {
    id: job.id,
    token: job.token,
    allow_git_fetch: true,
    job_info: {
      id: job.id,
      name: job.name,
      stage: job.stage,
      pipeline_id: pipeline.id,
      project_id: project.id,
      project_name: project.name,
      project_full_path: project.path,
      namespace_id: project.id + 1000,
      root_namespace_id: project.id + 1000,
      organization_id: 1,
      instance_id: INSTANCE_ID,
      instance_uuid: INSTANCE_UUID,
      user_id: 1,
      scoped_user_id: null,
      time_in_queue_seconds: Math.max(0, Math.floor((input.now - (job.queuedAt ?? input.now)) / 1000)),
      project_jobs_running_on_instance_runners_count: String(input.projectRunningCount),
      queue_size: input.queueSize,
      queue_depth: input.queueSize,
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
      protected: protectedRef,
    },
    runner_info: { uuid: runner.uuid, timeout, runner_session_url: input.sessionUrl ?? null },
    variables: buildVariables({ job, pipeline, project, runner, baseUrl: input.baseUrl, gitDepth: depth, repoUrl: url }),
    steps,
    hooks: hooks(spec),
    image: spec.image === undefined ? null : image(spec.image),
    services: (spec.services ?? []).map(service),
    artifacts: artifacts(spec),
    cache: cacheList(spec.cache).map((c) => cache(c, protectedRef)),
    credentials: [],
    features: { trace_sections: true, failure_reasons: [...GITLAB_FAILURE_REASONS] },
    dependencies: input.dependencies.map((d) => dependency(d, job.token)),
  };
}

/** Fake-owned job_info keys (identity: ids and names): they tie the job to real records of the fake. */
const OWNED_JOB_INFO = [
  'id', 'name', 'stage', 'pipeline_id', 'project_id', 'project_name', 'project_full_path', 'namespace_id',
  'root_namespace_id', 'organization_id', 'instance_id', 'instance_uuid', 'user_id',
];
/** Top-level keys a fixture never replaces: without them the job could not really run against the fake. */
const OWNED_TOP = new Set(['id', 'token', 'git_info', 'features', 'dependencies']);

/** The fixture overlay; semantics documented on JobSpec.payload. */
function layOver(own: RailsJobPayload, overlay: Record<string, unknown>, job: JobRecord): RailsJobPayload {
  const out: Record<string, unknown> = { ...own };
  const obj = (v: unknown): Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  for (const [key, value] of Object.entries(overlay)) {
    if (OWNED_TOP.has(key)) continue;
    switch (key) {
      case 'job_info': {
        const merged: Record<string, unknown> = { ...own.job_info, ...obj(value) };
        for (const k of OWNED_JOB_INFO) merged[k] = (own.job_info as unknown as Record<string, unknown>)[k];
        out.job_info = merged;
        break;
      }
      case 'runner_info':
        out.runner_info = { ...own.runner_info, ...obj(value), timeout: own.runner_info.timeout };
        break;
      case 'variables': {
        const rendered = new Set(own.variables.map((v) => v.key));
        const extra = Array.isArray(value)
          ? (value as RailsVariable[]).filter((v) => !(v && typeof v === 'object' && rendered.has(v.key)))
          : [];
        out.variables = [...own.variables, ...extra];
        break;
      }
      case 'steps':
        if (job.spec.script === undefined) out.steps = value;
        break;
      case 'credentials':
        out.credentials = Array.isArray(value)
          ? (value as RailsCredential[]).map((c) => (c && typeof c === 'object' ? { ...c, password: job.token } : c))
          : value;
        break;
      default:
        out[key] = value;
    }
  }
  // A script-less spec serves the fixture's steps, or none (a `run:` job has no `steps` key).
  if (job.spec.script === undefined && !('steps' in overlay)) delete out.steps;
  return out as unknown as RailsJobPayload;
}

function hooks(spec: JobSpec): RailsHook[] {
  // Gitlab::Ci::Build::Hook.from_hooks: options[:hooks].to_a, in the order written.
  return Object.entries(spec.hooks ?? {})
    .filter((e): e is [string, string[]] => Array.isArray(e[1]))
    .map(([name, script]) => ({ name, script }));
}

function imageSpecOf(spec: string | ImageSpec): ImageSpec {
  // Entry::Imageable#value turns `image: name` into `{ name: }`: a bare string renders like a hash.
  return typeof spec === 'string' ? { name: spec } : spec;
}

/** Gitlab::Ci::Build::Image (hash branch) rendered by Entities::Ci::JobRequest::Image. */
function image(spec: string | ImageSpec): RailsImage {
  const s = imageSpecOf(spec);
  return {
    name: s.name,
    entrypoint: s.entrypoint ?? null,
    ports: ports(s),
    executor_opts: executorOpts(s),
    pull_policy: s.pull_policy === undefined ? null : Array.isArray(s.pull_policy) ? s.pull_policy : [s.pull_policy],
  };
}

/** Entities::Ci::JobRequest::Service: the image fields, then alias, command and variables. */
function service(spec: string | ImageSpec): RailsService {
  const s = imageSpecOf(spec);
  return {
    ...image(s),
    alias: s.alias ?? null,
    command: s.command ?? null,
    // Build::Image#build_variables: `{ key, value }` only; [] when the service wrote none.
    variables: Object.entries(s.variables ?? {}).map(([key, value]) => ({ key, value: String(value) })),
  };
}

function ports(s: ImageSpec): RailsPort[] {
  // Gitlab::Ci::Build::Port defaults: protocol http, name default_port.
  return (s.ports ?? []).map((p) =>
    typeof p === 'number'
      ? { number: p, protocol: 'http', name: 'default_port' }
      : { number: p.number, protocol: p.protocol ?? 'http', name: p.name ?? 'default_port' },
  );
}

function executorOpts(s: ImageSpec): RailsExecutorOpts {
  // Entry::Imageable#executor_opts: config.slice(:docker, :kubernetes).compact; Build::Image defaults it to {}.
  const out: RailsExecutorOpts = {};
  if (s.docker) out.docker = { ...s.docker };
  if (s.kubernetes) out.kubernetes = { ...s.kubernetes };
  return out;
}

/** Ci::BuildRunnerPresenter#artifacts: nil without `artifacts:`; the archive entry only with paths or
 *  untracked, carrying the keys as written (nil otherwise); one entry per report, `.compact`ed. */
function artifacts(spec: JobSpec): RailsArtifact[] | null {
  const a = spec.artifacts;
  if (!a) return null;
  const list: RailsArtifact[] = [];
  if (a.untracked || a.paths !== undefined) {
    list.push({
      name: a.name ?? null,
      ...(a.untracked === undefined ? {} : { untracked: a.untracked }), // expose_nil: false
      paths: a.paths ?? null,
      ...(a.exclude?.length ? { exclude: a.exclude } : {}), // deleted unless present
      when: a.when ?? null,
      expire_in: a.expire_in ?? null,
      artifact_type: 'archive',
      artifact_format: 'zip',
    });
  }
  const reports: Array<[string, string[] | undefined, string, string]> = [
    ['junit', a.reports?.junit, 'gzip', 'junit.xml.gz'],
    ['dotenv', a.reports?.dotenv, 'gzip', '.env.gz'],
  ];
  for (const [type, paths, format, name] of reports) {
    if (!paths) continue;
    list.push({ name, paths, when: 'always', expire_in: a.expire_in ?? null, artifact_type: type, artifact_format: format });
  }
  return list;
}

export function cacheList(c: CacheSpec | CacheSpec[] | undefined): CacheSpec[] {
  return c === undefined ? [] : Array.isArray(c) ? c : [c];
}

/** Ci::Build#cache over Entry::Cache#value: key default "default", policy pull-push, when on_success,
 *  fallback_keys []; untracked and paths stay nil unless written. Keys get the -protected / -non_protected
 *  suffix (ci_separated_caches; `unprotect` means -non_protected on a protected ref too), fallback keys too;
 *  `$VARIABLES` are passed unexpanded. */
function cache(c: CacheSpec, protectedRef: boolean): RailsCache {
  const suffix = !c.unprotect && protectedRef ? '-protected' : '-non_protected';
  return {
    key: `${c.key ?? 'default'}${suffix}`,
    untracked: c.untracked ?? null,
    paths: c.paths ?? null,
    policy: c.policy ?? 'pull-push',
    when: c.when ?? 'on_success',
    fallback_keys: (c.fallback_keys ?? []).map((k) => `${k}${suffix}`),
  };
}

function dependency(dep: JobRecord, runningJobToken: string): RailsDependency {
  // Current GitLab hands out the RUNNING job's token for dependency downloads (docs/gitlab-protocol.md §2.3);
  // artifacts_file only when the dependency has an archive (`if: available_artifacts?`).
  const out: RailsDependency = { id: dep.id, name: dep.name, token: runningJobToken };
  const archive = dep.artifacts.find((a) => a.type === 'archive');
  if (archive) out.artifacts_file = { filename: archive.filename, size: archive.bytes.length };
  return out;
}
