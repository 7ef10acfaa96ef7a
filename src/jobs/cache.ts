// restore_cache / archive_cache / archive_cache_on_failure with the local store. Cache failures are
// warnings, never job failures (gitlab-runner's rule).

import { posix } from 'node:path';
import type { JobCache, JobPayload } from '../core/index.js';
import type { PlanContext } from './context.js';
import { localCacheFile, type ProjectDirs } from './dirs.js';
import { UnsupportedJobError } from './errors.js';
import { collectArgs, relativePatterns } from './paths.js';
import { op } from './quote.js';
import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

export type CacheOutcome = 'success' | 'failure';

interface CacheEntry {
  keys: string[]; // the key, then fallbacks
  cache: JobCache;
}

function policyOf(c: JobCache): { pull: boolean; push: boolean } {
  const policy = c.policy ?? 'pull-push';
  if (policy === 'pull-push') return { pull: true, push: true };
  if (policy === 'pull') return { pull: true, push: false };
  if (policy === 'push') return { pull: false, push: true };
  throw new UnsupportedJobError(`unknown cache policy ${JSON.stringify(policy)}`);
}

function hasContent(c: JobCache): boolean {
  return (c.paths?.length ?? 0) > 0 || c.untracked === true;
}

/** The key (default `<job name>/<ref>`, as gitlab-runner), expanded; fallbacks, then CACHE_FALLBACK_KEY. */
function entries(job: JobPayload, vars: VariableSet): CacheEntry[] {
  return (job.cache ?? []).map((cache) => {
    const key = vars.expand(cache.key ?? '') || `${job.job_info.name}/${job.git_info.ref}`;
    const keys = [key, ...(cache.fallback_keys ?? []).map((k) => vars.expand(k))];
    const global = vars.get('CACHE_FALLBACK_KEY');
    // GitLab ignores a global fallback that would reach a protected cache.
    if (global && !global.endsWith('-protected')) keys.push(global);
    return { keys: [...new Set(keys.filter((k) => k !== ''))], cache };
  });
}

export function needsRestore(job: JobPayload): boolean {
  return (job.cache ?? []).some((c) => hasContent(c) && policyOf(c).pull);
}

export function needsArchive(job: JobPayload, outcome: CacheOutcome): boolean {
  return (job.cache ?? []).some((c) => hasContent(c) && policyOf(c).push && whenMatches(c.when, outcome));
}

function whenMatches(when: JobCache['when'], outcome: CacheOutcome): boolean {
  const w = when ?? 'on_success';
  return w === 'always' || (outcome === 'success' ? w === 'on_success' : w === 'on_failure');
}

export function writeRestoreCache(w: ShellWriter, job: JobPayload, ctx: PlanContext, vars: VariableSet, dirs: ProjectDirs): void {
  w.use('unzip');
  w.cd(dirs.projectDir);
  for (const { keys, cache } of entries(job, vars)) {
    if (!hasContent(cache)) continue;
    const [key = ''] = keys;
    if (!policyOf(cache).pull) {
      w.notice(`Not downloading cache ${key} due to policy`);
      continue;
    }
    // Try the key, then each fallback, until one extracts.
    w.raw('_fr_restored=0');
    for (const k of keys) {
      const file = localCacheFile(ctx, job.job_info.project_id, k);
      w.ifCommand(op('[ "$_fr_restored" = 0 ]'));
      w.notice(`Checking cache for ${k}...`);
      w.ifFile(file);
      w.echo('No URL provided, cache will not be downloaded from shared cache server. Instead a local version of cache will be extracted.');
      w.ifCommand('_fr_unzip', file, dirs.projectDir);
      w.notice('Successfully extracted cache');
      w.raw('_fr_restored=1');
      w.else();
      w.warning(`WARNING: Failed to extract cache ${k}`);
      w.endIf();
      w.else();
      w.warning(`WARNING: ${k}: cache not found`);
      w.endIf();
      w.endIf();
    }
    w.ifCommand(op('[ "$_fr_restored" = 0 ]'));
    w.warning('Failed to extract cache');
    w.endIf();
  }
}

export function writeArchiveCache(
  w: ShellWriter,
  job: JobPayload,
  ctx: PlanContext,
  vars: VariableSet,
  dirs: ProjectDirs,
  outcome: CacheOutcome,
): void {
  w.use('collect');
  w.use('archive');
  w.cd(dirs.projectDir);
  const list = posix.join(dirs.tmpDir, 'cache-files.txt');
  for (const { keys, cache } of entries(job, vars)) {
    if (!hasContent(cache) || !whenMatches(cache.when, outcome)) continue;
    const [key = ''] = keys;
    if (!policyOf(cache).push) {
      w.notice(`Not uploading cache ${key} due to policy`);
      continue;
    }
    const file = localCacheFile(ctx, job.job_info.project_id, key);
    const partial = `${file}.partial`;
    w.notice(`Creating cache ${key}...`);
    w.command('_fr_collect', list, ...collectArgs(relativePatterns(w, cache.paths, vars), [], cache.untracked === true));
    w.ifCommand(op('[ -s'), list, op(']'));
    // Build beside the target and rename: a concurrent restore never sees half an archive.
    w.command('mkdir', '-p', posix.dirname(file));
    w.ifCommand('_fr_archive', 'zip', list, partial, op('&&'), 'mv', '-f', partial, file);
    w.echo('No URL provided, cache will not be uploaded to shared cache server. Cache will be stored only locally.');
    w.notice('Created cache');
    w.else();
    w.command('rm', '-f', partial);
    w.warning('Failed to create cache');
    w.endIf();
    w.else();
    w.warning(`WARNING: No files to archive, cache ${key} not created`);
    w.endIf();
  }
  w.command('rm', '-f', list);
}
