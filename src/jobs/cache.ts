// restore_cache / archive_cache / archive_cache_on_failure: the local store here, the presigned (S3)
// store in cache-presigned.ts. Cache failures are warnings, never job failures (gitlab-runner's rule).

import { posix } from 'node:path';
import type { JobPayload } from '../core/index.js';
import { cacheEntries, hasContent, whenMatches, type CacheOutcome } from './cache-keys.js';
import { writePresignedArchive, writePresignedRestore } from './cache-presigned.js';
import { writeRestoreLoop } from './cache-restore-loop.js';
import type { PlanContext } from './context.js';
import { localCacheFile, type ProjectDirs } from './dirs.js';
import { UnsupportedJobError } from './errors.js';
import { collectArgs, relativePatterns } from './paths.js';
import { op } from './quote.js';
import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

export { needsArchive, needsRestore, type CacheOutcome } from './cache-keys.js';

/** Throws for a store these scripts do not know (a caller outside TypeScript's checks). */
export function checkCacheStore(ctx: PlanContext): void {
  const store = ctx.cacheStore ?? { kind: 'local' };
  if (store.kind === 'local') return;
  if (store.kind === 'presigned') {
    if (typeof store.entries !== 'object' || store.entries === null) throw new TypeError('presigned cache store without entries');
    return;
  }
  throw new UnsupportedJobError(`unsupported cache store ${JSON.stringify((store as { kind: unknown }).kind)}`);
}

export function writeRestoreCache(w: ShellWriter, job: JobPayload, ctx: PlanContext, vars: VariableSet, dirs: ProjectDirs): void {
  const store = ctx.cacheStore ?? { kind: 'local' };
  if (store.kind === 'presigned') return writePresignedRestore(w, job, store, vars, dirs);
  w.use('unzip');
  writeRestoreLoop(w, job, vars, dirs, (k) => {
    const file = localCacheFile(ctx, job.job_info.project_id, k);
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
  });
}

export function writeArchiveCache(
  w: ShellWriter,
  job: JobPayload,
  ctx: PlanContext,
  vars: VariableSet,
  dirs: ProjectDirs,
  outcome: CacheOutcome,
): void {
  const store = ctx.cacheStore ?? { kind: 'local' };
  if (store.kind === 'presigned') return writePresignedArchive(w, job, store, vars, dirs, outcome);
  w.use('collect');
  w.use('archive');
  w.cd(dirs.projectDir);
  const list = posix.join(dirs.tmpDir, 'cache-files.txt');
  for (const { keys, cache, push } of cacheEntries(job, vars)) {
    if (!hasContent(cache) || !whenMatches(cache.when, outcome)) continue;
    const [key = ''] = keys;
    if (!push) {
      w.notice(`Not uploading cache ${key} due to policy`);
      continue;
    }
    const file = localCacheFile(ctx, job.job_info.project_id, key);
    const partial = `${file}.partial`;
    w.notice(`Creating cache ${key}...`);
    w.command('_fr_collect', list, ...collectArgs(relativePatterns(w, cache.paths, vars), [], cache.untracked));
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
