// The job's variable list in gitlab-runner's order (docs/gitlab-protocol.md §6.4), expanded once, last definition wins.

import type { JobPayload, JobStatusForAfterScript, JobVariable } from '../core/index.js';
import type { PlanContext } from './context.js';
import { expandVariables, fileVariablePath, TEMP_DIR_KEY } from './expand.js';
import type { ProjectDirs } from './dirs.js';

/** CI_JOB_STATUS as the stage sees it: `running` for everything but after_script and the final stages. */
export type StageStatus = 'running' | JobStatusForAfterScript;

export const DEFAULT_JOB_TIMEOUT_S = 7200;

export function jobTimeoutSeconds(job: JobPayload): number {
  const t = job.runner_info?.timeout;
  return typeof t === 'number' && t > 0 ? t : DEFAULT_JOB_TIMEOUT_S;
}

/** Runner-added variables around the job's own, in gitlab-runner's order. Values computed by the runner
 *  (paths, versions) are raw: a `$` in a builds dir must not be expanded. */
export function collectVariables(
  job: JobPayload,
  ctx: PlanContext,
  dirs: ProjectDirs,
  status: StageStatus,
): JobVariable[] {
  const list: JobVariable[] = [];
  const runner = (key: string, value: string): void => {
    list.push({ key, value, public: true, raw: true });
  };
  if (job.image?.name) list.push({ key: 'CI_JOB_IMAGE', value: job.image.name, public: true });
  runner('CI_RUNNER_SHORT_TOKEN', ctx.runner.shortToken);
  for (const [key, value] of Object.entries(ctx.environment ?? {})) list.push({ key, value, public: true });
  runner('CI_BUILDS_DIR', ctx.buildsDir);
  runner('CI_PROJECT_DIR', dirs.projectDir);
  runner('CI_CONCURRENT_ID', String(ctx.runner.concurrentId));
  runner('CI_CONCURRENT_PROJECT_ID', String(ctx.runner.concurrentId));
  runner('CI_SERVER', 'yes');
  runner('CI_JOB_STATUS', status);
  runner('CI_JOB_TIMEOUT', String(jobTimeoutSeconds(job)));
  // GitLab always sends CI_JOB_TOKEN; the git credential helper reads it, so make sure it exists.
  if (!job.variables.some((v) => v.key === 'CI_JOB_TOKEN')) {
    list.push({ key: 'CI_JOB_TOKEN', value: job.token, public: false, masked: true, raw: true });
  }
  list.push(...job.variables);
  runner(ctx.sharedEnvironment ? 'CI_SHARED_ENVIRONMENT' : 'CI_DISPOSABLE_ENVIRONMENT', 'true');
  runner('CI_RUNNER_VERSION', ctx.runner.version);
  runner('CI_RUNNER_REVISION', ctx.runner.revision);
  runner('CI_RUNNER_EXECUTABLE_ARCH', `${ctx.runner.platform}/${ctx.runner.arch}`);
  runner(TEMP_DIR_KEY, dirs.tmpDir);
  return list;
}

/** A variable as exported: its final (expanded) value, and for a file variable the path it is written to. */
export interface ResolvedVariable {
  key: string;
  value: string;
  masked: boolean;
  /** Set for file variables: `value` is written here and the variable holds this path. */
  filePath?: string;
}

/** Expands every non-raw value once against the whole list, then keeps each key's last definition
 *  (in the order of those last definitions). */
export function resolveVariables(list: readonly JobVariable[]): ResolvedVariable[] {
  const last = new Map<string, ResolvedVariable>();
  for (const v of list) {
    const value = v.raw ? v.value : expandVariables(v.value, list);
    const r: ResolvedVariable = { key: v.key, value, masked: v.masked === true };
    if (v.file) r.filePath = fileVariablePath(v.key, list);
    last.delete(v.key);
    last.set(v.key, r);
  }
  return [...last.values()];
}

/** Read access to the resolved variables for plan-time decisions (GIT_STRATEGY, timeouts, …). */
export class VariableSet {
  private readonly byKey: Map<string, ResolvedVariable>;

  constructor(
    readonly list: readonly ResolvedVariable[],
    private readonly source: readonly JobVariable[],
  ) {
    this.byKey = new Map(list.map((v) => [v.key, v]));
  }

  /** The value as a script sees it: a file variable gives its path. */
  get(key: string): string | undefined {
    const v = this.byKey.get(key);
    return v === undefined ? undefined : (v.filePath ?? v.value);
  }

  /** The value as a Go bool (parseBoolValue); undefined when unset or unparsable. */
  bool(key: string): boolean | undefined {
    return parseBoolValue(this.get(key));
  }

  /** Expands a payload string (cache key, artifact path, …) against the same list. */
  expand(value: string): string {
    return expandVariables(value, this.source);
  }
}

/** Go's strconv.ParseBool (case-insensitive), else an integer equal to 1; undefined when unset/unparsable. */
function parseBoolValue(value: string | null | undefined): boolean | undefined {
  const s = value?.trim().toLowerCase();
  if (s === undefined || s === '') return undefined;
  if (['1', 't', 'true'].includes(s)) return true;
  if (['0', 'f', 'false'].includes(s)) return false;
  return /^[+-]?\d+$/.test(s) ? Number(s) === 1 : undefined;
}

/** Go's strconv.ParseBool as it is, no trimming or other case: what gitlab-runner's build settings read
 *  CI_DEBUG_TRACE and CI_DEBUG_SERVICES with (common/build_settings.go); anything else is not true. */
export function isGoTrue(value: string | null | undefined): boolean {
  return value === '1' || value === 't' || value === 'T' || value === 'true' || value === 'TRUE' || value === 'True';
}

/** Whether the job runs in debug mode, as gitlab-runner decides it (Build.IsDebugModeEnabled): the last
 *  definition of CI_DEBUG_TRACE or of CI_DEBUG_SERVICES is true (isGoTrue). It sets the trace PATCHes'
 *  debug_trace, which GitLab uses to restrict who may read the log. From the job's variables: an
 *  executor's `environment` that sets CI_DEBUG_TRACE turns on xtrace (plan.ts) but not this flag, since the
 *  trace channel opens before the job is routed to an executor. */
export function debugModeEnabled(list: readonly JobVariable[]): boolean {
  const last = (key: string) => list.findLast((v) => v.key === key)?.value;
  return isGoTrue(last('CI_DEBUG_TRACE')) || isGoTrue(last('CI_DEBUG_SERVICES'));
}

export function variableSet(list: readonly JobVariable[]): VariableSet {
  return new VariableSet(resolveVariables(list), list);
}
