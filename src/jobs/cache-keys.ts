// Which cache keys a job reads and writes, and when: shared by the local and presigned stores, and by the
// coordinator, which presigns URLs for exactly the keys the scripts will ask for.

import type { JobCache, JobPayload } from '../core/index.js';
import type { PlanContext } from './context.js';
import { projectDirs } from './dirs.js';
import { UnsupportedJobError } from './errors.js';
import { collectVariables, variableSet, type StageStatus, type VariableSet } from './variables.js';

export type CacheOutcome = 'success' | 'failure';

export interface CacheEntry {
  keys: string[]; // the key, then fallbacks
  cache: JobCache;
  /** The policy, resolved (cachePolicy): restore may download, archive may upload. */
  pull: boolean;
  push: boolean;
}

/**
 * `cache:policy` as the job runs it. GitLab (16.1+) passes `$VARIABLE` references through unexpanded, so
 * it is expanded here against the job's variables; empty means pull-push. Anything else fails the job
 * (UnsupportedJobError) with the value and where it came from.
 */
export function cachePolicy(c: JobCache, vars: VariableSet, index = 0): { pull: boolean; push: boolean } {
  const policy = vars.expand(c.policy);
  if (policy === '' || policy === 'pull-push') return { pull: true, push: true };
  if (policy === 'pull') return { pull: true, push: false };
  if (policy === 'push') return { pull: false, push: true };
  const from = policy === c.policy ? '' : ` (from ${JSON.stringify(c.policy)})`;
  throw new UnsupportedJobError(`cache[${index}].policy: unknown cache policy ${JSON.stringify(policy)}${from}; expected pull, push or pull-push`);
}

export function hasContent(c: JobCache): boolean {
  return c.paths.length > 0 || c.untracked;
}

export function whenMatches(when: JobCache['when'], outcome: CacheOutcome): boolean {
  return when === 'always' || (outcome === 'success' ? when === 'on_success' : when === 'on_failure');
}

/** The key (default `<job name>/<ref>`, as gitlab-runner), expanded; fallbacks, then CACHE_FALLBACK_KEY. */
export function cacheEntries(job: JobPayload, vars: VariableSet): CacheEntry[] {
  return job.cache.map((cache, i) => {
    const key = vars.expand(cache.key) || `${job.job_info.name}/${job.git_info.ref}`;
    const keys = [key, ...cache.fallback_keys.map((k) => vars.expand(k))];
    const global = vars.get('CACHE_FALLBACK_KEY');
    // GitLab ignores a global fallback that would reach a protected cache.
    if (global && !global.endsWith('-protected')) keys.push(global);
    // An entry with nothing to cache is skipped before its policy is read, as gitlab-runner does.
    const policy = hasContent(cache) ? cachePolicy(cache, vars, i) : { pull: false, push: false };
    return { keys: [...new Set(keys.filter((k) => k !== ''))], cache, ...policy };
  });
}

export function needsRestore(job: JobPayload, vars: VariableSet): boolean {
  return cacheEntries(job, vars).some((e) => hasContent(e.cache) && e.pull);
}

export function needsArchive(job: JobPayload, vars: VariableSet, outcome: CacheOutcome): boolean {
  return cacheEntries(job, vars).some((e) => hasContent(e.cache) && e.push && whenMatches(e.cache.when, outcome));
}

/** One expanded cache key and what the job's scripts may do with it. */
export interface CacheKeyUse {
  key: string;
  /** restore_cache may download it (the key or one of its fallbacks). */
  pull: boolean;
  /** archive_cache or archive_cache_on_failure may upload it (only a main key, never a fallback). */
  push: boolean;
}

/** What a remote store must presign for one job: keys are scoped to the project by the store. */
export interface CacheRequest {
  projectId: number;
  keys: CacheKeyUse[];
}

/**
 * The keys `buildPlan(job, ctx)` will look up in a presigned store, expanded exactly as the stages expand
 * them (restore with CI_JOB_STATUS=running, archive with success/failed), in restore order.
 */
export function cacheRequest(job: JobPayload, ctx: PlanContext): CacheRequest {
  const dirs = projectDirs(job, ctx);
  const vars = (status: StageStatus): VariableSet => variableSet(collectVariables(job, ctx, dirs, status));
  const uses = new Map<string, CacheKeyUse>();
  const add = (key: string, pull: boolean, push: boolean): void => {
    const u = uses.get(key) ?? { key, pull: false, push: false };
    uses.set(key, { key, pull: u.pull || pull, push: u.push || push });
  };
  for (const { keys, cache, pull } of cacheEntries(job, vars('running'))) {
    if (hasContent(cache) && pull) for (const k of keys) add(k, true, false);
  }
  for (const [outcome, status] of [['success', 'success'], ['failure', 'failed']] as const) {
    for (const { keys, cache, push } of cacheEntries(job, vars(status))) {
      const [key] = keys;
      if (key !== undefined && hasContent(cache) && push && whenMatches(cache.when, outcome)) add(key, false, true);
    }
  }
  return { projectId: job.job_info.project_id, keys: [...uses.values()] };
}
