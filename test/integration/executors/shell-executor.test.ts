import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ANSI } from '../../../src/executors/index.js';
import {
  RecordingTrace,
  executorFor,
  makePlan,
  makeRun,
  stage,
  stagesRun,
  startMachine,
  type TestMachine,
} from './harness.js';

let m: TestMachine;

beforeAll(async () => {
  m = await startMachine();
});
afterAll(async () => {
  await m?.dispose();
});

describe('ShellExecutor over SSH', () => {
  it('runs every stage in order and ends with "Job succeeded" in green', async () => {
    const run = makeRun();
    const outcome = await executorFor(makePlan(m.info)).run(m.info, run.ctx);

    expect(outcome).toEqual({ state: 'success' });
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'after_script', 'on_success', 'cleanup']);
    const text = run.trace.text();
    expect(text).toContain(`${ANSI.boldCyan}Preparing the "shell" executor${ANSI.reset}`);
    expect(run.trace.plain()).toContain('Using SSH executor...');
    expect(text).toMatch(/section_start:\d+:prepare_executor\r\x1b\[0K/);
    expect(text).toMatch(/section_end:\d+:prepare_executor\r\x1b\[0K/);
    expect(run.trace.plain()).toContain('stage:after_script status=success');
    expect(text.endsWith(`${ANSI.boldGreen}Job succeeded${ANSI.reset}\n`)).toBe(true);
    expect(run.trace.flushes).toBeGreaterThan(0);
  });

  it('before GitLab confirmed the job: its prepare stage runs, its user stage waits; with get_sources hooks, nothing runs', async () => {
    for (const hooks of [[], [{ name: 'pre_get_sources_script', script: ['echo hook'] }]]) {
      let confirm!: () => void;
      const run = makeRun();
      run.ctx.confirmed = new Promise<void>((r) => (confirm = r));
      run.ctx.job.hooks = hooks;
      const done = executorFor(makePlan(m.info)).run(m.info, run.ctx);
      await new Promise((r) => setTimeout(r, 400));
      expect(stagesRun(run.trace)).toEqual(hooks.length ? [] : ['get_sources']);
      confirm();
      expect(await done).toEqual({ state: 'success' });
      expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'after_script', 'on_success', 'cleanup']);
    }
  });

  it('streams output while the script runs, in order', async () => {
    const go = join(m.info.buildsDir, `go-${Date.now()}`);
    // The script waits for a file the test creates only after it saw line-1 in the trace:
    // if output were held back until the script ended, this job could never finish.
    const script = [
      'echo line-1',
      `while [ ! -e '${go}' ]; do sleep 0.05; done`,
      'echo line-2',
      'sleep 0.1',
      'echo line-3',
      'echo to-stderr >&2',
    ].join('\n');
    const run = makeRun();
    const done = executorFor(makePlan(m.info, { user: [stage('step_script', script)] })).run(m.info, run.ctx);
    await run.trace.waitFor('line-1');
    expect(run.trace.text()).not.toContain('line-2');
    writeFileSync(go, '');

    expect(await done).toEqual({ state: 'success' });
    const plain = run.trace.plain();
    const at = (s: string) => plain.indexOf(s);
    expect(at('line-1')).toBeGreaterThan(-1);
    expect(at('line-1')).toBeLessThan(at('line-2'));
    expect(at('line-2')).toBeLessThan(at('line-3'));
    expect(plain).toContain('to-stderr');
  });

  it('reports a non-zero exit as script_failure with its code; after_script sees failed', async () => {
    const run = makeRun();
    const plan = makePlan(m.info, {
      user: [stage('step_script', 'echo "stage:step_script"\nexit 3'), stage('step_release', 'echo "stage:step_release"')],
    });
    const outcome = await executorFor(plan).run(m.info, run.ctx);

    expect(outcome).toEqual({ state: 'failed', reason: 'script_failure', exitCode: 3, message: 'exit code 3' });
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'after_script', 'on_failure', 'cleanup']);
    expect(run.trace.plain()).toContain('stage:after_script status=failed');
    expect(run.trace.text()).toContain(`${ANSI.boldRed}ERROR: Job failed: exit code 3${ANSI.reset}\n`);
  });

  it('a failing prepare stage skips user stages and after_script but runs the on-failure stages', async () => {
    const run = makeRun();
    const plan = makePlan(m.info, {
      prepare: [stage('get_sources', 'echo "stage:get_sources"\nexit 128', 'predefined'), stage('restore_cache', 'echo "stage:restore_cache"', 'predefined')],
    });
    const outcome = await executorFor(plan).run(m.info, run.ctx);

    expect(outcome).toMatchObject({ state: 'failed', reason: 'script_failure', exitCode: 128 });
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'on_failure', 'cleanup']);
  });

  it('ignores a failing after_script, with a warning', async () => {
    const run = makeRun();
    const plan = makePlan(m.info, { after: () => stage('after_script', 'echo "stage:after_script"\nexit 7', 'after') });
    const outcome = await executorFor(plan).run(m.info, run.ctx);
    expect(outcome).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('WARNING: after_script failed, but job will continue unaffected: exit code 7');
  });

  it('gives commands an empty stdin, so they cannot swallow the rest of the script', async () => {
    const run = makeRun();
    const plan = makePlan(m.info, { user: [stage('step_script', 'cat\nread -r x || echo "stdin was empty"\necho "still running"')] });
    expect(await executorFor(plan).run(m.info, run.ctx)).toEqual({ state: 'success' });
    expect(run.trace.plain()).toContain('stdin was empty\nstill running');
  });

  it('streams 2 MB of output in bounded chunks', async () => {
    const trace = new RecordingTrace(false);
    const run = makeRun(trace);
    const lines = 20_000; // 100 bytes each
    const plan = makePlan(m.info, {
      prepare: [],
      after: undefined,
      onSuccess: [],
      cleanup: stage('cleanup_file_variables', 'true', 'predefined'),
      user: [stage('step_script', `yes "$(printf '%099d' 0)" | head -n ${lines}`)],
    });
    const heapBefore = process.memoryUsage().heapUsed;
    expect(await executorFor(plan).run(m.info, run.ctx)).toEqual({ state: 'success' });
    expect(trace.bytes).toBeGreaterThan(lines * 100);
    // Output is handed on chunk by chunk as the SSH channel delivers it, never collected whole.
    expect(trace.writes).toBeGreaterThan(10);
    expect(trace.largestWrite).toBeLessThanOrEqual(256 * 1024);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
  });

  it('removes its pid files from the machine after the job', async () => {
    const run = makeRun();
    await executorFor(makePlan(m.info)).run(m.info, run.ctx);
    const tmp = join(m.info.buildsDir, '..', 'tmp');
    const { readdirSync } = await import('node:fs');
    expect(existsSync(tmp) ? readdirSync(tmp).filter((f) => f.startsWith('fleetrunner-job-')) : []).toEqual([]);
  });

  it('fails as runner_system_failure when the machine cannot be reached', async () => {
    const run = makeRun();
    const unreachable = { ...m.info, port: 1 };
    const outcome = await executorFor(makePlan(m.info), { connectTimeoutMs: 1_000 }).run(unreachable, run.ctx);
    expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(run.trace.plain()).toMatch(/ERROR: Job failed \(system failure\): ssh: could not connect to .*127\.0\.0\.1:1/);
    expect(stagesRun(run.trace)).toEqual([]);
  });
});
