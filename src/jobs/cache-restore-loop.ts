// The restore loop both cache stores share (GitLab's order): for each cache entry with content and a pull
// policy, try the key, then each fallback key, until one extracts. A store supplies only how to try one
// key; it runs inside "nothing restored yet" and sets _fr_restored=1 when it extracted.

import type { JobPayload } from '../core/index.js';
import { cacheEntries, hasContent } from './cache-keys.js';
import type { ProjectDirs } from './dirs.js';
import { op } from './quote.js';
import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

export function writeRestoreLoop(w: ShellWriter, job: JobPayload, vars: VariableSet, dirs: ProjectDirs, tryKey: (key: string) => void): void {
  w.cd(dirs.projectDir);
  for (const { keys, cache, pull } of cacheEntries(job, vars)) {
    if (!hasContent(cache)) continue;
    const [key = ''] = keys;
    if (!pull) {
      w.notice(`Not downloading cache ${key} due to policy`);
      continue;
    }
    w.raw('_fr_restored=0');
    for (const k of keys) {
      w.ifCommand(op('[ "$_fr_restored" = 0 ]'));
      w.notice(`Checking cache for ${k}...`);
      tryKey(k);
      w.endIf();
    }
    w.ifCommand(op('[ "$_fr_restored" = 0 ]'));
    w.warning('Failed to extract cache');
    w.endIf();
  }
}
