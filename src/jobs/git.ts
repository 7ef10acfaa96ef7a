// get_sources (docs/gitlab-protocol.md §6.3). The job token never reaches a command line: the remote URL has no
// credentials, and git asks a credential helper (from a config file in the temp dir) that echoes
// $CI_JOB_TOKEN from the environment with shell builtins.

import { posix } from 'node:path';
import type { JobPayload } from '../core/index.js';
import type { ProjectDirs } from './dirs.js';
import { UnsupportedJobError } from './errors.js';
import { op, quote, type Word } from './quote.js';
import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

export type GitStrategy = 'fetch' | 'clone' | 'none' | 'empty';
export type SubmoduleStrategy = 'none' | 'normal' | 'recursive';

// Runs inside `sh -c` started by git: `echo` is a builtin there, so the token stays out of argv.
const CREDENTIAL_HELPER =
  '!f() { test "$1" = get || exit 0; echo username=gitlab-ci-token; echo "password=${CI_JOB_TOKEN}"; }; f';

/** GitLab's rule: an unknown or empty GIT_STRATEGY falls back to fetch (if allowed) or clone. */
export function gitStrategy(job: JobPayload, vars: VariableSet): GitStrategy {
  const s = vars.get('GIT_STRATEGY')?.trim();
  if (s === 'fetch' || s === 'clone' || s === 'none' || s === 'empty') return s;
  return job.allow_git_fetch ? 'fetch' : 'clone';
}

export function submoduleStrategy(vars: VariableSet): SubmoduleStrategy {
  const s = vars.get('GIT_SUBMODULE_STRATEGY')?.trim() ?? '';
  if (s === '') return 'none';
  if (s === 'none' || s === 'normal' || s === 'recursive') return s;
  throw new UnsupportedJobError(`unknown GIT_SUBMODULE_STRATEGY ${JSON.stringify(s)}`);
}

/** The remote without userinfo, and the scheme://host[:port] the credential helper is scoped to. */
export function remoteOf(repoUrl: string): { url: string; credentialOrigin?: string } {
  let u: URL;
  try {
    u = new URL(repoUrl);
  } catch {
    if (repoUrl.includes('@')) throw new UnsupportedJobError('repo_url is not a URL and may hold credentials');
    return { url: repoUrl };
  }
  u.username = '';
  u.password = '';
  const http = u.protocol === 'http:' || u.protocol === 'https:';
  return http ? { url: u.href, credentialOrigin: `${u.protocol}//${u.host}` } : { url: u.href };
}

/** `git fetch` arguments after `git`: refspecs, depth and GIT_FETCH_EXTRA_FLAGS. */
export function fetchArgs(job: JobPayload, vars: VariableSet, unshallow: boolean): string[] {
  const { depth = 0, ref, ref_type: refType } = job.git_info;
  let refspecs = job.git_info.refspecs;
  if (refspecs.length === 0) {
    // Payloads older than `refspecs`: gitlab-runner's former defaults.
    refspecs =
      depth > 0
        ? [refType === 'tag' ? `+refs/tags/${ref}:refs/tags/${ref}` : `+refs/heads/${ref}:refs/remotes/origin/${ref}`]
        : ['+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'];
  }
  const args = ['fetch', 'origin', '--no-recurse-submodules', ...refspecs];
  if (depth > 0) args.push('--depth', String(depth));
  else if (unshallow) args.push('--unshallow');
  args.push(...fields(vars.get('GIT_FETCH_EXTRA_FLAGS') ?? '--prune --quiet'));
  return args;
}

/** Go's strings.Fields. */
export function fields(s: string): string[] {
  return s.split(/\s+/).filter((f) => f !== '');
}

export interface GetSourcesInput {
  job: JobPayload;
  vars: VariableSet;
  dirs: ProjectDirs;
  /** Writes one hook's commands (echoed like the job script). */
  writeHook: (name: 'pre_get_sources_script' | 'post_get_sources_script') => void;
}

export function writeGetSources(w: ShellWriter, input: GetSourcesInput): void {
  const { job, vars, dirs } = input;
  const strategy = gitStrategy(job, vars);
  const submodules = submoduleStrategy(vars);
  const { projectDir } = dirs;
  const parent = posix.dirname(projectDir);

  w.raw('export GIT_TERMINAL_PROMPT=0');
  const userSkipsSmudge = vars.get('GIT_LFS_SKIP_SMUDGE') !== undefined;
  if (!userSkipsSmudge) w.raw('export GIT_LFS_SKIP_SMUDGE=1'); // LFS objects come with `git lfs pull`
  if (strategy === 'none') {
    // mkdir -p makes the parent too: one process instead of two.
    w.notice('Skipping Git repository setup');
    w.mkdir(projectDir);
    w.cd(projectDir);
    input.writeHook('post_get_sources_script');
    return;
  }
  w.mkdir(parent);
  w.cd(parent);
  input.writeHook('pre_get_sources_script');

  if (strategy === 'empty') {
    w.notice('Skipping Git repository setup and creating an empty build directory');
    w.rmTree(projectDir);
    w.mkdir(projectDir);
  } else {
    writeFetch(w, input, strategy);
    writeCheckout(w, input, userSkipsSmudge);
    writeSubmodules(w, job, vars, submodules);
  }
  w.cd(projectDir);
  input.writeHook('post_get_sources_script');
}

function writeFetch(w: ShellWriter, { job, vars, dirs }: GetSourcesInput, strategy: 'fetch' | 'clone'): void {
  const { projectDir, tmpDir } = dirs;
  const depth = job.git_info.depth ?? 0;
  const remote = remoteOf(job.git_info.repo_url);
  w.notice(depth > 0 ? `Fetching changes with git depth set to ${depth}...` : 'Fetching changes...');
  if (strategy === 'clone') w.rmTree(projectDir);

  const credentials = posix.join(tmpDir, 'git-credentials.conf');
  if (remote.credentialOrigin !== undefined) {
    const section = `credential.${remote.credentialOrigin}`;
    w.command('rm', '-f', credentials);
    // An empty helper first drops helpers from system/global config for this host.
    w.command('git', 'config', '-f', credentials, '--add', `${section}.helper`, '');
    w.command('git', 'config', '-f', credentials, '--add', `${section}.helper`, CREDENTIAL_HELPER);
    w.command('git', 'config', '-f', credentials, `${section}.username`, 'gitlab-ci-token');
    // Env config reaches every git process of this stage, submodule clones included.
    w.exportVariable('GIT_CONFIG_COUNT', '1');
    w.exportVariable('GIT_CONFIG_KEY_0', 'include.path');
    w.exportVariable('GIT_CONFIG_VALUE_0', credentials);
  }

  const gitDir = posix.join(projectDir, '.git');
  w.raw('_fr_fresh=1');
  w.ifDirectory(gitDir);
  w.raw('_fr_fresh=0');
  // Left behind by a job killed mid-operation on a reused machine; they would make git refuse to run.
  w.command('find', gitDir, '-name', '*.lock', '-type', 'f', op('-exec rm -f {} +'));
  w.command('rm', '-f', posix.join(gitDir, 'hooks', 'post-checkout'));
  w.endIf();
  const template = posix.join(tmpDir, 'git-template');
  w.mkdir(template);
  // Any init.defaultBranch silences git's "hint:" block; the checkout is detached anyway.
  const init: Word[] = ['git', '-c', 'init.defaultBranch=main', 'init', projectDir, '--template', template];
  if (job.git_info.repo_object_format === 'sha256') init.push('--object-format', 'sha256');
  w.command(...init);
  w.ifCommand(op('[ "$_fr_fresh" = 1 ]'));
  w.echo('Created fresh repository.');
  w.endIf();
  w.cd(projectDir);
  w.command('git', 'config', 'fetch.recurseSubmodules', 'false');
  if (remote.credentialOrigin !== undefined) {
    // Later stages (a job's own `git fetch`/`push`) find the helper too; cleanup deletes the file.
    w.command('git', 'config', '--replace-all', 'include.path', credentials);
  }
  w.ifCommand('git', 'remote', 'get-url', 'origin', op('>/dev/null 2>&1'));
  w.command('git', 'remote', 'set-url', 'origin', remote.url);
  w.else();
  w.command('git', 'remote', 'add', 'origin', remote.url);
  w.endIf();
  if (depth > 0) {
    w.command('git', ...fetchArgs(job, vars, false));
  } else {
    w.ifFile(posix.join(gitDir, 'shallow'));
    w.command('git', ...fetchArgs(job, vars, true));
    w.else();
    w.command('git', ...fetchArgs(job, vars, false));
    w.endIf();
  }
}

function writeCheckout(w: ShellWriter, { job, vars }: GetSourcesInput, userSkipsSmudge: boolean): void {
  if (vars.bool('GIT_CHECKOUT') === false) {
    w.notice('Skipping Git checkout');
    return;
  }
  const { sha, ref } = job.git_info;
  w.notice(`Checking out ${sha.slice(0, 8)} as detached HEAD (ref is ${ref})...`);
  w.command('git', '-c', 'submodule.recurse=false', 'checkout', '-f', '-q', sha);
  const clean = cleanFlags(vars);
  if (clean.length > 0) w.command('git', 'clean', ...clean);
  if (!userSkipsSmudge) {
    w.ifCommand('git', 'lfs', 'version', op('>/dev/null 2>&1'));
    w.command('git', 'lfs', 'pull');
    w.endIf();
  }
}

function cleanFlags(vars: VariableSet): string[] {
  const flags = fields(vars.get('GIT_CLEAN_FLAGS') ?? '-ffdx');
  return flags.length === 1 && flags[0] === 'none' ? [] : flags;
}

function writeSubmodules(w: ShellWriter, job: JobPayload, vars: VariableSet, strategy: SubmoduleStrategy): void {
  if (strategy === 'none') {
    w.notice('Skipping Git submodules setup');
    return;
  }
  const recursive = strategy === 'recursive' ? ['--recursive'] : [];
  const gitDepth = job.git_info.depth ?? 0;
  const depthVar = vars.get('GIT_SUBMODULE_DEPTH')?.trim();
  const depth = depthVar !== undefined && /^\d+$/.test(depthVar) ? Number(depthVar) : gitDepth;
  const depthNote = depth > 0 ? ` with git depth set to ${depth}` : '';
  w.notice(`Updating/initializing submodules${strategy === 'recursive' ? ' recursively' : ''}${depthNote}...`);
  w.command('git', 'submodule', 'init');
  w.command('git', 'submodule', 'sync', ...recursive);
  const update = ['git', 'submodule', 'update', '--init', ...recursive];
  if (depth > 0) update.push('--depth', String(depth));
  update.push(...fields(vars.get('GIT_SUBMODULE_UPDATE_FLAGS') ?? ''));
  const paths = fields(vars.get('GIT_SUBMODULE_PATHS') ?? '');
  if (paths.length > 0) update.push('--', ...paths);
  w.command(...update);
  // `foreach` takes one command string that git hands to sh: quote each word for that inner shell.
  const clean = cleanFlags(vars);
  if (clean.length > 0) {
    w.command('git', 'submodule', 'foreach', ...recursive, ['git', 'clean', ...clean].map(quote).join(' '));
  }
  w.command('git', 'submodule', 'foreach', ...recursive, 'git reset --hard');
}
