import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPlan } from '../../../src/jobs/index.js';
import type { JobPayload, Stage } from '../../../src/core/index.js';
import { jobCache, jobStep } from '../../helpers/job-payload.js';
import { context, FakeGitLab, git, JOB_TOKEN, makeRepo, payload, runStage, tempDir, removeTempDirs } from './helpers.js';

afterAll(removeTempDirs);

function stageNamed(stages: Stage[], name: string): Stage {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name}`);
  return s;
}

describe('get_sources against git http-backend with Basic auth', () => {
  let root: string;
  let repo: ReturnType<typeof makeRepo>;
  let gl: FakeGitLab;

  beforeAll(async () => {
    root = tempDir();
    repo = makeRepo(root);
    gl = new FakeGitLab(join(root, 'srv'));
    await gl.start();
  });
  afterAll(async () => gl.stop());

  function plan(over: Partial<JobPayload> = {}, buildsSuffix = 'builds') {
    return buildPlan(payload(gl.url, repo.sha, over), context(root, gl.url, { buildsDir: join(root, buildsSuffix) }));
  }

  it('clones, checks out the sha detached, and keeps the token out of .git/config', async () => {
    const p = plan();
    const run = await runStage(stageNamed(p.prepare, 'get_sources'), root);
    expect(run.stderr + run.stdout).not.toContain('fatal');
    expect(run.code).toBe(0);
    expect(git(p.projectDir, 'rev-parse', 'HEAD')).toBe(repo.sha);
    expect(run.stdout).toContain('Fetching changes with git depth set to 1...');
    expect(run.stdout).toContain('Created fresh repository.');
    expect(run.stdout).toContain(`Checking out ${repo.sha.slice(0, 8)} as detached HEAD (ref is main)...`);
    expect(run.stdout).toContain('Skipping Git submodules setup');
    expect(run.stdout).toMatch(/section_start:\d+:get_sources\r\x1b\[0K/);
    expect(run.stdout).toMatch(/section_end:\d+:get_sources\r\x1b\[0K/);
    // git authenticated with the job token through the credential helper
    expect(gl.gitAuth).toContain(`gitlab-ci-token:${JOB_TOKEN}`);
    expect(git(p.projectDir, 'remote', 'get-url', 'origin')).toBe(`${gl.url}/grp/proj.git`);
    expect(readFileSync(join(p.projectDir, '.git', 'config'), 'utf8')).not.toContain(JOB_TOKEN);
    expect(existsSync(join(p.projectDir, '.git', 'shallow'))).toBe(true);
    expect(git(p.projectDir, 'rev-parse', 'refs/pipelines/1')).toBe(repo.sha);
  });

  it('fetches into an existing checkout, unshallows with depth 0, and cleans untracked files', async () => {
    const first = plan({}, 'builds-fetch');
    expect((await runStage(stageNamed(first.prepare, 'get_sources'), root)).code).toBe(0);
    writeFileSync(join(first.projectDir, 'junk.txt'), 'x');
    writeFileSync(join(first.projectDir, '.git', 'index.lock'), '');

    const base = payload(gl.url, repo.sha);
    const second = plan(
      {
        git_info: {
          ...base.git_info,
          depth: 0,
          refspecs: ['+refs/pipelines/1:refs/pipelines/1', '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'],
        },
      },
      'builds-fetch',
    );
    const run = await runStage(stageNamed(second.prepare, 'get_sources'), root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Fetching changes...');
    expect(run.stdout).not.toContain('Created fresh repository.');
    expect(existsSync(join(second.projectDir, '.git', 'shallow'))).toBe(false);
    expect(git(second.projectDir, 'cat-file', '-t', repo.firstSha)).toBe('commit');
    expect(existsSync(join(second.projectDir, 'junk.txt'))).toBe(false);
  });

  it('fails the stage when the token is wrong (git gets 401), without prompting', async () => {
    const p = plan({ variables: [{ key: 'CI_JOB_TOKEN', value: 'glcbt-wrong', masked: true }] }, 'builds-bad');
    const run = await runStage(stageNamed(p.prepare, 'get_sources'), root);
    expect(run.code).not.toBe(0);
  });

  it('GIT_STRATEGY=none only creates the directory and runs the hooks', async () => {
    const p = plan(
      {
        variables: [{ key: 'GIT_STRATEGY', value: 'none' }],
        hooks: [{ name: 'post_get_sources_script', script: ['pwd > hook-ran.txt'] }],
      },
      'builds-none',
    );
    const run = await runStage(stageNamed(p.prepare, 'get_sources'), root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Skipping Git repository setup');
    expect(run.stdout).toContain('$ pwd > hook-ran.txt');
    expect(readFileSync(join(p.projectDir, 'hook-ran.txt'), 'utf8').trim()).toBe(p.projectDir);
    expect(existsSync(join(p.projectDir, '.git'))).toBe(false);
  });

  it('a later stage can use git with the same credentials, and cleanup removes them', async () => {
    const p = plan({ steps: [jobStep({ name: 'script', script: ['git fetch -q origin main', 'git ls-remote origin main'] })] }, 'builds-user');
    expect((await runStage(stageNamed(p.prepare, 'get_sources'), root)).code).toBe(0);
    const step = await runStage(p.user[0]!, root);
    expect(step.code).toBe(0);
    expect(step.stdout).toContain(repo.sha);
    expect((await runStage(p.cleanup, root)).code).toBe(0);
    expect(existsSync(`${p.projectDir}.tmp`)).toBe(false);
  });
});

describe('untracked files in a checkout', () => {
  it('cache `untracked: true` takes git untracked files, ignored ones included', async () => {
    const root = tempDir();
    const repo = makeRepo(root);
    const gl = new FakeGitLab(join(root, 'srv'));
    await gl.start();
    try {
      const job = payload(gl.url, repo.sha, { cache: [jobCache({ key: 'u', untracked: true, policy: 'push' })] });
      const p = buildPlan(job, context(root, gl.url));
      for (const s of p.prepare) expect((await runStage(s, root)).code).toBe(0);
      writeFileSync(join(p.projectDir, 'new.txt'), 'n');
      writeFileSync(join(p.projectDir, 'ignored.log'), 'i');
      const run = await runStage(p.onSuccess[0]!, root);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('untracked: found 2 files');
      const list = execFileSync('zipinfo', ['-1', join(root, 'cache', '7', 'u', 'cache.zip')], { encoding: 'utf8' });
      expect(list.trim().split('\n').sort()).toEqual(['ignored.log', 'new.txt']);
    } finally {
      await gl.stop();
    }
  });
});
