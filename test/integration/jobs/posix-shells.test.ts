// User-stage scripts (step_*, after_script) must run in images without bash: busybox ash (alpine) and
// dash (debian's sh), as well as bash. Predefined stages stay bash-only (they run on the machine).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { JobPayload } from '../../../src/core/index.js';
import { buildPlan, type PlanContext } from '../../../src/jobs/index.js';
import { jobPayload, jobStep } from '../../helpers/job-payload.js';
import { removeTempDirs, tempDir } from './helpers.js';

afterAll(() => removeTempDirs());

const shells: Array<[string, string[]]> = [
  ['bash', ['bash']],
  ['dash', ['dash']],
];
for (const bb of ['/bin/busybox', '/usr/bin/busybox']) {
  if (existsSync(bb)) {
    shells.push(['busybox sh', [bb, 'sh']]);
    break;
  }
}

function setup(): { ctx: PlanContext; job: JobPayload; projectDir: string } {
  const root = tempDir('fr-posix-');
  const ctx: PlanContext = {
    buildsDir: join(root, 'builds'),
    cacheDir: join(root, 'cache'),
    gitlabUrl: 'http://127.0.0.1:9',
    runner: { version: '1', revision: 'r', shortToken: 'abcdefgh', executorName: 'x', concurrentId: 0, platform: 'linux', arch: 'amd64' },
    sharedEnvironment: false,
  };
  const job: JobPayload = jobPayload({
    id: 5,
    token: 'glcbt-tok',
    job_info: { name: 't', project_id: 1, project_full_path: 'g/p' },
    git_info: { repo_url: 'http://x/g/p.git', ref: 'main', sha: '0'.repeat(40) },
    runner_info: {},
    variables: [
      { key: 'GREETING', value: "it's \"quoted\" $$HOME", public: true },
      { key: 'CONFIG_FILE', value: 'line1\nline2', file: true, public: true },
      { key: 'CI_DEBUG_TRACE', value: 'false', public: true },
    ],
    steps: [
      {
        name: 'script',
        script: ['echo "greeting=$GREETING"', 'cat "$CONFIG_FILE"', 'echo "NEXT=carried over" >> "$GITLAB_ENV"', 'cat <<EOF\nheredoc $GREETING\nEOF', 'pwd > pwd.txt'],
      },
      { name: 'after_script', script: ['echo "after status=$CI_JOB_STATUS next=$NEXT"'] },
    ],
  });
  const projectDir = join(ctx.buildsDir, 'g/p');
  mkdirSync(projectDir, { recursive: true });
  return { ctx, job, projectDir };
}

function run(cmd: string[], script: string): { status: number | null; out: string } {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { input: script, encoding: 'utf8', env: { PATH: process.env.PATH } });
  return { status: r.status, out: (r.stdout + r.stderr).replace(/\x1b\[[0-9;]*[A-Za-z]/g, '') };
}

describe.each(shells)('user stages under %s', (_name, cmd) => {
  it('export variables (file variables too), keep GITLAB_ENV between stages, run heredocs, report status', () => {
    const { ctx, job, projectDir } = setup();
    const plan = buildPlan(job, ctx);
    const step = run(cmd, plan.user[0]!.script);
    expect(step.out).toContain('greeting=it\'s "quoted" $HOME');
    expect(step.out).toContain('line1\nline2');
    expect(step.out).toContain('heredoc it\'s "quoted" $HOME');
    expect(step.status, step.out).toBe(0);
    expect(readFileSync(join(projectDir, 'pwd.txt'), 'utf8').trim()).toBe(projectDir);
    const after = run(cmd, plan.after!('success').script);
    expect(after.out).toContain('after status=success next=carried over');
    expect(after.status).toBe(0);
  });

  it('stops at the first failing command with its exit status', () => {
    const { ctx, job } = setup();
    // A failing command (not an explicit `exit`): its status must survive errexit in every shell.
    job.steps = [jobStep({ name: 'script', script: ['echo one', 'sh -c "exit 7"', 'echo never'] })];
    const r = run(cmd, buildPlan(job, ctx).user[0]!.script);
    expect(r.status).toBe(7);
    expect(r.out).toContain('one');
    expect(r.out).not.toContain('never\n');
  });

  it('fails on a failing command inside a pipeline wherever the shell has pipefail', () => {
    const { ctx, job } = setup();
    job.steps = [jobStep({ name: 'script', script: ['false | true', 'echo after'] })];
    const hasPipefail = spawnSync(cmd[0]!, [...cmd.slice(1), '-c', 'set -o pipefail']).status === 0;
    if (cmd[0] === 'bash') expect(hasPipefail).toBe(true);
    const r = run(cmd, buildPlan(job, ctx).user[0]!.script);
    expect(r.status, r.out).toBe(hasPipefail ? 1 : 0);
    expect(r.out.includes('after\n')).toBe(!hasPipefail);
  });
});
