// Archive path patterns (artifacts and cache): expanded against the job's variables, relative to the
// project dir. Absolute paths and `..` would reach outside the checkout, so they are dropped (GitLab
// refuses them too) with a warning in the job log.

import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

export function relativePatterns(w: ShellWriter, patterns: readonly string[] | undefined, vars: VariableSet): string[] {
  const out: string[] = [];
  for (const raw of patterns ?? []) {
    const p = vars.expand(raw);
    if (p === '') continue;
    if (p.startsWith('/') || p.split('/').includes('..')) {
      w.warning(`WARNING: ${p}: path is outside the project directory, ignored`);
      continue;
    }
    out.push(p);
  }
  return out;
}

/** `_fr_collect` arguments for a set of paths/excludes/untracked. */
export function collectArgs(paths: readonly string[], excludes: readonly string[], untracked: boolean): string[] {
  const args: string[] = [];
  for (const p of paths) args.push('--path', p);
  for (const e of excludes) args.push('--exclude', e);
  if (untracked) args.push('--untracked');
  return args;
}
