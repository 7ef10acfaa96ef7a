// restore_cache / archive_cache with a remote store reached through presigned URLs (S3). The machine holds
// no cloud credentials; the URLs it gets carry a signature (and a session token) in their query, so:
// - a URL reaches curl only through a mode-600 config file in the job's private tmp dir, written with the
//   printf builtin and removed right after (cleanup_file_variables removes the dir if the stage dies);
// - xtrace (CI_DEBUG_TRACE) is paused while that file is written;
// - the job log shows scheme://host/path only.

import { posix } from 'node:path';
import type { JobPayload } from '../core/index.js';
import { cacheEntries, hasContent, whenMatches, type CacheOutcome } from './cache-keys.js';
import type { CacheStore, PresignedCacheUrls } from './context.js';
import { writeRestoreLoop } from './cache-restore-loop.js';
import type { ProjectDirs } from './dirs.js';
import { collectArgs, relativePatterns } from './paths.js';
import { op } from './quote.js';
import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

type PresignedStore = Extract<CacheStore, { kind: 'presigned' }>;

function urlsFor(store: PresignedStore, key: string): PresignedCacheUrls | undefined {
  return Object.hasOwn(store.entries, key) ? store.entries[key] : undefined;
}

function checkedUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError('presigned cache URL is not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new TypeError(`presigned cache URL must be http(s), got ${u.protocol}`);
  return u;
}

/** What the job log may show of a presigned URL: no query, no user info. */
export function displayUrl(url: string): string {
  const u = checkedUrl(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/** A curl config file line: the value double-quoted with curl's escapes. */
export function curlConfigUrl(url: string): string {
  checkedUrl(url);
  if (/[\r\n]/.test(url)) throw new TypeError('presigned cache URL contains a line break');
  return `url = "${url.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"\n`;
}

function writeUrlConfig(w: ShellWriter, file: string, url: string): void {
  // The group's own xtrace lines go to /dev/null; xtrace is back on (if it was) after the file exists.
  w.raw('{ _fr_xtrace=$-; set +x; } 2>/dev/null');
  w.writePrivateFile(file, curlConfigUrl(url));
  w.raw('case $_fr_xtrace in *x*) set -x ;; esac');
}

function files(dirs: ProjectDirs): { config: string; download: string; upload: string; list: string } {
  return {
    config: posix.join(dirs.tmpDir, 'cache-url.curlrc'),
    download: posix.join(dirs.tmpDir, 'cache-download.zip'),
    upload: posix.join(dirs.tmpDir, 'cache-upload.zip'),
    list: posix.join(dirs.tmpDir, 'cache-files.txt'),
  };
}

export function writePresignedRestore(w: ShellWriter, job: JobPayload, store: PresignedStore, vars: VariableSet, dirs: ProjectDirs): void {
  w.use('unzip');
  w.use('cacheGet');
  const f = files(dirs);
  writeRestoreLoop(w, job, vars, dirs, (k) => {
    const url = urlsFor(store, k)?.get;
    if (url === undefined) {
      w.warning(`WARNING: ${k}: no download URL was provided for this key, skipped`);
    } else {
      writeUrlConfig(w, f.config, url);
      w.echo(`Downloading cache from ${displayUrl(url)}`);
      w.raw('_fr_cache_rc=0');
      w.command('_fr_cache_get', f.config, f.download, op('|| _fr_cache_rc=$?'));
      w.command('rm', '-f', f.config);
      w.ifCommand(op('[ "$_fr_cache_rc" = 0 ]'));
      w.ifCommand('_fr_unzip', f.download, dirs.projectDir);
      w.notice('Successfully extracted cache');
      w.raw('_fr_restored=1');
      w.else();
      w.warning(`WARNING: Failed to extract cache ${k}`);
      w.endIf();
      w.else();
      w.ifCommand(op('[ "$_fr_cache_rc" = 1 ]'));
      w.warning(`WARNING: ${k}: cache not found`);
      w.endIf();
      w.endIf();
      w.command('rm', '-f', f.download);
    }
  });
}

export function writePresignedArchive(
  w: ShellWriter,
  job: JobPayload,
  store: PresignedStore,
  vars: VariableSet,
  dirs: ProjectDirs,
  outcome: CacheOutcome,
): void {
  w.use('collect');
  w.use('archive');
  w.use('cachePut');
  w.cd(dirs.projectDir);
  const f = files(dirs);
  for (const { keys, cache, push } of cacheEntries(job, vars)) {
    if (!hasContent(cache) || !whenMatches(cache.when, outcome)) continue;
    const [key = ''] = keys;
    if (!push) {
      w.notice(`Not uploading cache ${key} due to policy`);
      continue;
    }
    const url = urlsFor(store, key)?.put;
    w.notice(`Creating cache ${key}...`);
    if (url === undefined) {
      w.warning(`WARNING: ${key}: no upload URL was provided for this key, cache not created`);
      continue;
    }
    w.command('_fr_collect', f.list, ...collectArgs(relativePatterns(w, cache.paths, vars), [], cache.untracked));
    w.ifCommand(op('[ -s'), f.list, op(']'));
    w.ifCommand('_fr_archive', 'zip', f.list, f.upload);
    writeUrlConfig(w, f.config, url);
    w.echo(`Uploading cache.zip to ${displayUrl(url)}`);
    w.raw('_fr_cache_rc=0');
    w.command('_fr_cache_put', f.config, f.upload, op('|| _fr_cache_rc=$?'));
    w.command('rm', '-f', f.config);
    w.ifCommand(op('[ "$_fr_cache_rc" = 0 ]'));
    w.notice('Created cache');
    w.else();
    w.warning('Failed to create cache');
    w.endIf();
    w.else();
    w.warning('Failed to create cache');
    w.endIf();
    w.command('rm', '-f', f.upload);
    w.else();
    w.warning(`WARNING: No files to archive, cache ${key} not created`);
    w.endIf();
  }
  w.command('rm', '-f', f.list);
}
