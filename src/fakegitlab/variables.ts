// The job's variables[] as Rails sends them (docs/gitlab-protocol.md §2.3, §6.4): GitLab's predefined CI_* variables, then
// the job's own, already expanded. Variables the RUNNER adds (CI_SERVER, CI_PROJECT_DIR, CI_BUILDS_DIR,
// CI_JOB_STATUS, …) are deliberately absent so that a runner forgetting them is caught. Like Rails
// (Gitlab::Ci::Variables::Collection::Item allows nil), a predefined value can be `null`: CI_PIPELINE_NAME
// without workflow:name (lib/gitlab/ci/variables/builder/pipeline.rb), CI_PROJECT_DESCRIPTION without a
// description (Project#predefined_project_variables), CI_RUNNER_DESCRIPTION without one (Ci::Runner).
import type { RailsVariable } from './rails-payload.js';
import type { JobRecord, PipelineRecord, ProjectRecord, RunnerRecord } from './records.js';
import type { VariableSpec } from './types.js';

export interface VariableContext {
  job: JobRecord;
  pipeline: PipelineRecord;
  project: ProjectRecord;
  runner: RunnerRecord;
  baseUrl: string;
  gitDepth: number;
  repoUrl: string;
}

export function slugify(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '-')
    .slice(0, 63)
    .replace(/^-+|-+$/g, '');
}

const MASKABLE = /^[a-zA-Z0-9_+=/@:.~-]{8,}$/;

/** Rails refuses to save a masked variable that it could not mask reliably. */
export function maskedValueError(key: string, spec: VariableSpec): string | undefined {
  if (!spec.masked) return undefined;
  if (spec.raw ? spec.value.length >= 8 : MASKABLE.test(spec.value)) return undefined;
  return `variable ${key}: a masked value needs at least 8 characters from [a-zA-Z0-9_+=/@:.~-]`;
}

export function buildVariables(ctx: VariableContext): RailsVariable[] {
  const { job, pipeline, project, runner, baseUrl } = ctx;
  const url = new URL(baseUrl);
  const projectUrl = `${baseUrl}/${project.path}`;
  const title = pipeline.commitMessage.split('\n')[0] ?? '';
  const pub = (key: string, value: string | null): RailsVariable => ({ key, value, public: true, masked: false });
  const vars: RailsVariable[] = [
    pub('CI_PIPELINE_ID', String(pipeline.id)),
    pub('CI_PIPELINE_URL', `${projectUrl}/-/pipelines/${pipeline.id}`),
    pub('CI_JOB_ID', String(job.id)),
    pub('CI_JOB_URL', `${projectUrl}/-/jobs/${job.id}`),
    { key: 'CI_JOB_TOKEN', value: job.token, public: false, masked: true },
    pub('CI_JOB_STARTED_AT', new Date(job.startedAt ?? 0).toISOString().replace(/\.\d{3}Z$/, 'Z')),
    pub('CI_REGISTRY_USER', 'gitlab-ci-token'),
    { key: 'CI_REGISTRY_PASSWORD', value: job.token, public: false, masked: true },
    { key: 'CI_REPOSITORY_URL', value: ctx.repoUrl, public: false, masked: false },
    pub('CI_JOB_NAME', job.name),
    pub('CI_JOB_NAME_SLUG', slugify(job.name)),
    pub('CI_JOB_STAGE', job.stage),
    pub('CI_NODE_TOTAL', '1'),
    pub('CI', 'true'),
    pub('GITLAB_CI', 'true'),
    pub('CI_SERVER_URL', baseUrl),
    pub('CI_SERVER_HOST', url.hostname),
    pub('CI_SERVER_PORT', url.port),
    pub('CI_SERVER_PROTOCOL', url.protocol.replace(':', '')),
    pub('CI_SERVER_FQDN', url.host),
    pub('CI_SERVER_NAME', 'GitLab'),
    pub('CI_SERVER_VERSION', '18.4.0'),
    pub('CI_API_V4_URL', `${baseUrl}/api/v4`),
    pub('CI_API_GRAPHQL_URL', `${baseUrl}/api/graphql`),
    pub('GITLAB_FEATURES', ''),
    pub('CI_PROJECT_ID', String(project.id)),
    pub('CI_PROJECT_NAME', project.name),
    pub('CI_PROJECT_TITLE', project.name),
    pub('CI_PROJECT_DESCRIPTION', project.description ?? null),
    pub('CI_PROJECT_PATH', project.path),
    pub('CI_PROJECT_PATH_SLUG', slugify(project.path)),
    pub('CI_PROJECT_NAMESPACE', project.namespace),
    pub('CI_PROJECT_NAMESPACE_ID', String(project.id + 1000)),
    pub('CI_PROJECT_ROOT_NAMESPACE', project.namespace.split('/')[0] ?? project.namespace),
    pub('CI_PROJECT_URL', projectUrl),
    pub('CI_PROJECT_VISIBILITY', 'private'),
    pub('CI_PROJECT_REPOSITORY_LANGUAGES', ''),
    pub('CI_DEFAULT_BRANCH', project.defaultBranch),
    pub('CI_CONFIG_PATH', '.gitlab-ci.yml'),
    pub('CI_PIPELINE_IID', String(pipeline.id)),
    pub('CI_PIPELINE_SOURCE', 'push'),
    pub('CI_PIPELINE_CREATED_AT', new Date(pipeline.createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z')),
    pub('CI_PIPELINE_NAME', pipeline.name ?? null),
    pub('CI_COMMIT_SHA', pipeline.sha),
    pub('CI_COMMIT_SHORT_SHA', pipeline.sha.slice(0, 8)),
    pub('CI_COMMIT_BEFORE_SHA', pipeline.beforeSha),
    pub('CI_COMMIT_REF_NAME', pipeline.ref),
    pub('CI_COMMIT_REF_SLUG', slugify(pipeline.ref)),
    pipeline.refType === 'tag' ? pub('CI_COMMIT_TAG', pipeline.ref) : pub('CI_COMMIT_BRANCH', pipeline.ref),
    pub('CI_COMMIT_REF_PROTECTED', String(isProtected(project, pipeline))),
    pub('CI_COMMIT_MESSAGE', pipeline.commitMessage),
    pub('CI_COMMIT_TITLE', title),
    pub('CI_COMMIT_DESCRIPTION', pipeline.commitMessage.split('\n').slice(1).join('\n').trim()),
    pub('CI_COMMIT_AUTHOR', 'Fake GitLab <fake@gitlab.invalid>'),
    pub('CI_RUNNER_ID', String(runner.id)),
    pub('CI_RUNNER_DESCRIPTION', runner.description),
    pub('CI_RUNNER_TAGS', '[]'),
    pub('GITLAB_USER_ID', '1'),
    pub('GITLAB_USER_LOGIN', 'root'),
    pub('GITLAB_USER_NAME', 'Administrator'),
    pub('GITLAB_USER_EMAIL', 'admin@gitlab.invalid'),
  ];
  if (ctx.gitDepth > 0) vars.push(pub('GIT_DEPTH', String(ctx.gitDepth)));
  if (job.spec.git_strategy) vars.push(pub('GIT_STRATEGY', job.spec.git_strategy));
  for (const [key, v] of Object.entries(job.spec.variables ?? {})) vars.push(userVariable(key, v));
  return expandAll(vars);
}

export function isProtected(project: ProjectRecord, pipeline: PipelineRecord): boolean {
  return pipeline.refType === 'branch' && pipeline.ref === project.defaultBranch;
}

function userVariable(key: string, v: string | VariableSpec): RailsVariable {
  // YAML variables are public; masked ones can only be project CI/CD variables, which are not.
  if (typeof v === 'string') return { key, value: v, public: true, masked: false };
  const out: RailsVariable = { key, value: v.value, public: !v.masked, masked: v.masked === true };
  if (v.file) out.file = true;
  if (v.raw) out.raw = true;
  return out;
}

/** Rails expands `$VAR` / `${VAR}` once against the list (last definition wins), keeping undefined
 *  references, refs to file and raw variables, and raw values untouched. Cycles are left as written. A reference to
 *  a variable whose value is nil becomes "" (Collection#expand_value substitutes nil); a nil value itself
 *  stays nil. */
export function expandAll(vars: RailsVariable[]): RailsVariable[] {
  const byKey = new Map<string, RailsVariable>();
  for (const v of vars) byKey.set(v.key, v);
  const done = new Map<string, string>();
  const visiting = new Set<string>();
  const resolve = (key: string): string | undefined => {
    const v = byKey.get(key);
    // expand_file_refs: false, expand_raw_refs: false (Ci::BuildRunnerPresenter#runner_variables).
    if (!v || v.file || v.raw) return undefined;
    if (v.value === null) return '';
    const cached = done.get(key);
    if (cached !== undefined) return cached;
    if (visiting.has(key)) return undefined;
    visiting.add(key);
    const out = expand(v.value);
    visiting.delete(key);
    done.set(key, out);
    return out;
  };
  const expand = (s: string): string =>
    s.replace(/\$\$|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, a?: string, b?: string) => {
      if (m === '$$') return m; // the runner turns $$ into $
      return resolve((a ?? b)!) ?? m;
    });
  return vars.map((v) => (v.raw || v.value === null ? v : { ...v, value: expand(v.value) }));
}
