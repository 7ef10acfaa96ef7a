import { readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobPayload, JobPlan } from '../../../src/core/index.js';
import { buildPlan } from '../../../src/jobs/index.js';
import { jobStep } from '../../helpers/job-payload.js';
import { context, payload, runStage, tempDir, removeTempDirs } from './helpers.js';

afterAll(removeTempDirs);

const GITLAB = 'http://127.0.0.1:9'; // never contacted: GIT_STRATEGY=none

describe('stage scripts run by bash', () => {
  let root: string;
  beforeAll(() => {
    root = tempDir();
  });

  let n = 0;
  /** A plan with GIT_STRATEGY=none in its own builds dir, with get_sources already run. */
  async function prepared(over: Partial<JobPayload> = {}, extraVars: JobPayload['variables'] = []): Promise<JobPlan> {
    const base = payload(GITLAB, 'f'.repeat(40));
    const job = { ...base, ...over, variables: [...base.variables, { key: 'GIT_STRATEGY', value: 'none' }, ...extraVars] };
    const plan = buildPlan(job, context(root, GITLAB, { buildsDir: `${root}/b${n++}` }));
    for (const s of plan.prepare) expect((await runStage(s, root)).code).toBe(0);
    return plan;
  }

  const script = (...lines: string[]): Partial<JobPayload> => ({ steps: [jobStep({ name: 'script', script: lines })] });

  it('stops at the first failing command and exits with its code', async () => {
    const plan = await prepared(script('echo one', 'exit 3', 'echo never'));
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(3);
    expect(run.stdout).toContain('\x1b[32;1m$ echo one\x1b[0;m\none\n');
    expect(run.stdout).toContain('$ exit 3');
    expect(run.stdout).not.toContain('never');
    // the section is closed even though the stage failed
    expect(run.stdout).toMatch(/section_end:\d+:step_script\r\x1b\[0K\n$/);
  });

  it('fails on a failing command inside a pipeline (pipefail) with its status', async () => {
    const plan = await prepared(script('false | cat', 'echo never'));
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(1);
    expect(run.stdout).not.toContain('never');
  });

  it('gives job commands their own stdin, so `cat` cannot eat the rest of the script', async () => {
    const plan = await prepared(script('cat', 'echo after-cat'));
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('after-cat');
  });

  it('echoes multi-line commands collapsed and runs them whole', async () => {
    const plan = await prepared(script('echo first\necho second', "cat <<'EOF'\nheredoc $HOME\nEOF"));
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('$ echo first # collapsed multi-line command');
    expect(run.stdout).toContain('first\nsecond\n');
    expect(run.stdout).toContain('heredoc $HOME\n');
  });

  it('runs in the project dir with runner variables, expansion done at plan time, raw kept literal', async () => {
    const plan = await prepared(script('pwd', 'echo "A=$A"', 'echo "R=$R"', 'echo "D=$CI_DISPOSABLE_ENVIRONMENT S=$CI_SERVER"'), [
      { key: 'B', value: 'bee' },
      { key: 'A', value: '$B-${B}-$$-$UNDEFINED-end' },
      { key: 'R', value: '$B stays', raw: true },
    ]);
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`${plan.projectDir}\n`);
    expect(run.stdout).toContain('A=bee-bee-$--end\n');
    expect(run.stdout).toContain('R=$B stays\n');
    expect(run.stdout).toContain('D=true S=yes\n');
  });

  it('writes file variables (mode 600) under <project dir>.tmp and exports their path', async () => {
    const secret = "line1\nit's $NOT expanded? no: $B\n";
    const plan = await prepared(script('cat "$KEYFILE"', 'echo "path=$KEYFILE"'), [
      { key: 'B', value: 'bee' },
      { key: 'KEYFILE', value: secret, file: true },
    ]);
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(0);
    const path = `${plan.projectDir}.tmp/KEYFILE`;
    expect(run.stdout).toContain(`path=${path}\n`);
    expect(readFileSync(path, 'utf8')).toBe("line1\nit's  expanded? no: bee\n");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${plan.projectDir}.tmp`).mode & 0o777).toBe(0o700);
  });

  it('round-trips every character U+0001..U+00FF, quotes and newlines through export', async () => {
    let all = '';
    for (let c = 1; c <= 0xff; c++) all += String.fromCharCode(c);
    const value = `${all}'"\\\n'''$(echo no)\`echo no\`${all}`;
    const plan = await prepared(script('printf %s "$ODD" > odd.out'), [{ key: 'ODD', value, raw: true }]);
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(0);
    expect(readFileSync(`${plan.projectDir}/odd.out`, 'utf8')).toBe(value);
  });

  it('shares GITLAB_ENV lines with later stages', async () => {
    const plan = await prepared({
      steps: [
        jobStep({ name: 'script', script: ['echo "FROM_ENV=hello world" >> "$GITLAB_ENV"'] }),
        jobStep({ name: 'release', script: ['echo "got=$FROM_ENV"'] }),
      ],
    });
    expect(plan.user.map((s) => s.name)).toEqual(['step_script', 'step_release']);
    expect((await runStage(plan.user[0]!, root)).code).toBe(0);
    const run = await runStage(plan.user[1]!, root);
    expect(run.stdout).toContain('got=hello world\n');
  });

  it('CI_DEBUG_TRACE=true traces commands', async () => {
    const plan = await prepared(script('echo traced'), [{ key: 'CI_DEBUG_TRACE', value: 'true' }]);
    const run = await runStage(plan.user[0]!, root);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain('+ echo traced');
  });

  describe('after_script', () => {
    const withAfter = (...lines: string[]): Partial<JobPayload> => ({
      steps: [
        jobStep({ name: 'script', script: ['true'] }),
        { name: 'after_script', script: lines, when: 'always', allow_failure: true },
      ],
    });

    it('sees CI_JOB_STATUS and runs in the project dir', async () => {
      const plan = await prepared(withAfter('echo "status=$CI_JOB_STATUS"', 'pwd'));
      const run = await runStage(plan.after!('canceled'), root);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Running after script...');
      expect(run.stdout).toContain('status=canceled\n');
      expect(run.stdout).toContain(`${plan.projectDir}\n`);
    });

    it('ignores its errors with a warning', async () => {
      const plan = await prepared(withAfter('exit 4'));
      const run = await runStage(plan.after!('failed'), root);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('WARNING: after_script failed, but job will continue unaffected: exit code 4');
    });

    it('reports errors when AFTER_SCRIPT_IGNORE_ERRORS=false', async () => {
      const plan = await prepared(withAfter('exit 4'), [{ key: 'AFTER_SCRIPT_IGNORE_ERRORS', value: 'false' }]);
      const run = await runStage(plan.after!('failed'), root);
      expect(run.code).toBe(4);
    });
  });
});
