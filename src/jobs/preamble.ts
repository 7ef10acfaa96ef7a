// The start of every stage that runs job-related commands: the private temp dir, the variables (file
// variables written there), GITLAB_ENV. Exports use the `export` builtin and files the `printf` builtin, so
// no value (tokens included) ever appears in a process's argv.

import { posix } from 'node:path';
import type { ProjectDirs } from './dirs.js';
import { op } from './quote.js';
import type { ResolvedVariable } from './variables.js';
import type { ShellWriter } from './writer.js';
import { isShellName } from './quote.js';

// Bash refuses to assign these (readonly); exporting one would abort every stage.
const BASH_READONLY = new Set(['BASHOPTS', 'BASH_VERSINFO', 'EUID', 'PPID', 'SHELLOPTS', 'UID']);

export function exportable(v: ResolvedVariable): boolean {
  return isShellName(v.key) && !BASH_READONLY.has(v.key);
}

export function writeEnvironment(w: ShellWriter, variables: readonly ResolvedVariable[], dirs: ProjectDirs): void {
  // prepare_script made it private for this job; later stages only recreate it if a job removed it.
  w.ensurePrivateDir(dirs.tmpDir);
  for (const v of variables) {
    if (!exportable(v)) continue;
    if (v.filePath !== undefined) {
      w.writePrivateFile(v.filePath, v.value);
      w.exportVariable(v.key, v.filePath);
    } else {
      w.exportVariable(v.key, v.value);
    }
  }
  // GITLAB_ENV: KEY=value lines a stage appends are exported by every later stage.
  const envFile = posix.join(dirs.tmpDir, 'gitlab_runner_env');
  w.exportVariable('GITLAB_ENV', envFile);
  w.ensureFile(envFile);
  w.raw('while IFS= read -r _fr_line || [ -n "$_fr_line" ]; do');
  w.raw('  if [ -n "$_fr_line" ]; then export -- "$_fr_line" 2>/dev/null || true; fi');
  w.command(op('done <'), envFile);
}
