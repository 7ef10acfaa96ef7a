// Where a job lives on the machine: the checkout, its private temp dir and its local cache archives.

import { posix } from 'node:path';
import type { JobPayload } from '../core/index.js';
import type { PlanContext } from './context.js';
import { UnsupportedJobError } from './errors.js';

export interface ProjectDirs {
  /** $CI_PROJECT_DIR. */
  projectDir: string;
  /** `<projectDir>.tmp`: file variables, git credential config, header files. Outside the checkout so
   *  `git clean` and GIT_STRATEGY=clone never touch it, removed by cleanup_file_variables. */
  tmpDir: string;
}

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** `group/sub/project` from the payload: job_info.project_full_path, else the repo URL's path. */
export function projectPath(job: JobPayload): string {
  const candidates = [job.job_info.project_full_path, repoPath(job.git_info.repo_url)];
  for (const c of candidates) {
    if (c !== undefined && c.split('/').every((s) => SEGMENT.test(s) && !s.endsWith('.'))) return c;
  }
  return `project-${job.job_info.project_id}`;
}

function repoPath(repoUrl: string): string | undefined {
  try {
    return new URL(repoUrl).pathname.replace(/^\/+/, '').replace(/\.git$/, '');
  } catch {
    return undefined;
  }
}

/**
 * GitLab's layout. A disposable machine: `<buildsDir>/<group>/<project>`. A shared (pooled) machine:
 * `<buildsDir>/<shortToken>/<concurrentId>/<group>/<project>`, as gitlab-runner does for shared build
 * dirs, so two jobs of one project running at once on one machine never share a checkout.
 */
export function projectDirs(job: JobPayload, ctx: PlanContext): ProjectDirs {
  requireAbsolute('buildsDir', ctx.buildsDir);
  const base = ctx.sharedEnvironment
    ? posix.join(ctx.buildsDir, safeSegment(ctx.runner.shortToken), String(ctx.runner.concurrentId))
    : ctx.buildsDir;
  const projectDir = posix.join(base, projectPath(job));
  return { projectDir, tmpDir: `${projectDir}.tmp` };
}

/**
 * `<cacheDir>/<project id>/<key>/cache.zip`. The key is percent-encoded outside [A-Za-z0-9_.-] (so `/`
 * cannot nest and distinct keys never collide), and `.`/`..` are encoded too: a key can never leave its
 * directory.
 */
export function localCacheFile(ctx: PlanContext, projectId: number, key: string): string {
  requireAbsolute('cacheDir', ctx.cacheDir);
  return posix.join(ctx.cacheDir, String(projectId), cacheKeyDir(key), 'cache.zip');
}

export function cacheKeyDir(key: string): string {
  const encoded = [...Buffer.from(key, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_.-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return /^\.*$/.test(encoded) ? encoded.replaceAll('.', '%2E') : encoded;
}

function safeSegment(s: string): string {
  return SEGMENT.test(s) ? s : cacheKeyDir(s);
}

function requireAbsolute(name: string, p: string): void {
  if (!posix.isAbsolute(p) || p.split('/').includes('..')) {
    throw new UnsupportedJobError(`${name} must be an absolute path without "..": ${JSON.stringify(p)}`);
  }
}
