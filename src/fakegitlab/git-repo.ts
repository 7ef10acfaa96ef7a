// Bare repositories made with git plumbing (no work tree): a commit is read-tree + update-index +
// write-tree + commit-tree on a private index. Author, committer and dates are fixed so that the same
// files give the same SHAs on every run.
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileContent } from './types.js';

const ZERO_SHA = '0000000000000000000000000000000000000000';
const BASE_DATE_S = 1_700_000_000; // commit n is dated BASE + n seconds

export function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    LANG: 'C',
    ...extra,
  };
}

export function runGit(args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env: gitEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8').trim());
      else reject(new Error(`git ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString('utf8').trim()}`));
    });
    child.stdin.on('error', () => undefined); // git may exit before reading; its exit code tells
    if (opts.input === undefined) child.stdin.end();
    else child.stdin.end(opts.input);
  });
}

export async function initBare(bareDir: string, branch: string): Promise<void> {
  await mkdir(bareDir, { recursive: true });
  await runGit(['init', '--quiet', '--bare', `--initial-branch=${branch}`, bareDir]);
}

/** Commits `files` on top of `branch` (created if absent); returns the new SHA and its parent. */
export async function commitFiles(
  bareDir: string,
  branch: string,
  files: Record<string, FileContent>,
  message: string,
  sequence: number,
): Promise<{ sha: string; parent: string }> {
  const git = (args: string[], input?: string, env: Record<string, string> = {}) =>
    runGit(['--git-dir', bareDir, ...args], { ...(input === undefined ? {} : { input }), env });
  const parent = await git(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).catch(() => '');
  const indexFile = join(bareDir, `fake-index-${process.pid}-${sequence}`);
  const idx = { GIT_INDEX_FILE: indexFile };
  try {
    if (parent) await git(['read-tree', parent], undefined, idx);
    else await git(['read-tree', '--empty'], undefined, idx);
    for (const [path, content] of Object.entries(files)) {
      if (content === null) {
        await git(['update-index', '--force-remove', '--', path], undefined, idx);
        continue;
      }
      const text = typeof content === 'string' ? content : content.content;
      const mode = typeof content !== 'string' && content.executable ? '100755' : '100644';
      const blob = await git(['hash-object', '-w', '--stdin'], text);
      await git(['update-index', '--add', '--cacheinfo', `${mode},${blob},${path}`], undefined, idx);
    }
    const tree = await git(['write-tree'], undefined, idx);
    const date = `${BASE_DATE_S + sequence} +0000`;
    const sha = await git(['commit-tree', tree, ...(parent ? ['-p', parent] : [])], message, {
      GIT_AUTHOR_NAME: 'Fake GitLab',
      GIT_AUTHOR_EMAIL: 'fake@gitlab.invalid',
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_NAME: 'Fake GitLab',
      GIT_COMMITTER_EMAIL: 'fake@gitlab.invalid',
      GIT_COMMITTER_DATE: date,
    });
    await git(['update-ref', `refs/heads/${branch}`, sha]);
    return { sha, parent: parent || ZERO_SHA };
  } finally {
    await rm(indexFile, { force: true });
  }
}

export function updateRef(bareDir: string, ref: string, sha: string): Promise<string> {
  return runGit(['--git-dir', bareDir, 'update-ref', ref, sha]);
}

export async function resolveRef(bareDir: string, ref: string): Promise<string> {
  return runGit(['--git-dir', bareDir, 'rev-parse', '--verify', `${ref}^{commit}`]);
}

export async function parentOf(bareDir: string, sha: string): Promise<string> {
  return runGit(['--git-dir', bareDir, 'rev-parse', '--verify', '--quiet', `${sha}^`]).catch(() => ZERO_SHA);
}

export function commitMessage(bareDir: string, sha: string): Promise<string> {
  return runGit(['--git-dir', bareDir, 'log', '-1', '--format=%B', sha]);
}
