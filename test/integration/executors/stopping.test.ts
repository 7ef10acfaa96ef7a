// Timeouts, cancel, abort and machine loss, with real remote processes that must really stop.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ANSI, shutdownCutOff } from '../../../src/executors/index.js';
import {
  executorFor,
  makePlan,
  makeRun,
  pgrep,
  stage,
  stagesRun,
  startMachine,
  uniqueSleep,
  type TestMachine,
} from './harness.js';

let m: TestMachine;

beforeAll(async () => {
  m = await startMachine();
});
afterAll(async () => {
  await m?.dispose();
});

/** Every descendant of `pid`, through `pgrep -P`. */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    // none
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

/** A user stage that announces itself, then sleeps in a child process we can look for. */
function sleeper(secs: string, extra = '') {
  return stage('step_script', `${extra}\necho "stage:step_script"\necho started\nsleep ${secs}\necho "not reached"`);
}

describe('stopping a job', () => {
  it('ends at the job deadline as job_execution_timeout and kills the remote processes', async () => {
    const secs = uniqueSleep();
    const run = makeRun();
    const plan = makePlan(m.info, { user: [sleeper(secs)], jobTimeoutMs: 2_000 });
    const outcome = await executorFor(plan).run(m.info, run.ctx);

    expect(outcome).toEqual({
      state: 'failed',
      reason: 'job_execution_timeout',
      message: 'execution took longer than 2 seconds',
    });
    expect(run.trace.text()).toContain(`${ANSI.boldRed}ERROR: Job failed: execution took longer than 2 seconds${ANSI.reset}`);
    expect(pgrep(`sleep ${secs}`)).toEqual([]);
    // No time is left for after_script; the failure stages and cleanup still run.
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'on_failure', 'cleanup']);
    expect(run.trace.plain()).not.toContain('not reached');
  });

  it('stops user stages at the script timeout and still runs after_script with timedout', async () => {
    const secs = uniqueSleep();
    const run = makeRun();
    const plan = makePlan(m.info, { user: [sleeper(secs)], scriptTimeoutMs: 1_000 });
    const outcome = await executorFor(plan).run(m.info, run.ctx);

    expect(outcome).toMatchObject({ state: 'failed', reason: 'job_execution_timeout' });
    expect(run.trace.plain()).toContain('stage:after_script status=timedout');
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'after_script', 'on_failure', 'cleanup']);
    expect(pgrep(`sleep ${secs}`)).toEqual([]);
  });

  it('on graceful cancel stops the script, runs after_script with canceled and the failure stages', async () => {
    const secs = uniqueSleep();
    const run = makeRun();
    const done = executorFor(makePlan(m.info, { user: [sleeper(secs)] })).run(m.info, run.ctx);
    await run.trace.waitFor('started');
    run.cancel();
    const outcome = await done;

    expect(outcome).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(run.trace.plain()).toContain('stage:after_script status=canceled');
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'after_script', 'on_failure', 'cleanup']);
    expect(run.trace.plain()).toContain('ERROR: Job failed: canceled');
    expect(pgrep(`sleep ${secs}`)).toEqual([]);
  });

  it('kills processes that ignore SIGTERM after the grace period', async () => {
    const secs = uniqueSleep();
    const run = makeRun();
    // bash ignores TERM, and so does the sleep it starts (ignored signals are inherited).
    const plan = makePlan(m.info, { user: [sleeper(secs, "trap '' TERM")] });
    const done = executorFor(plan, { killGraceMs: 300 }).run(m.info, run.ctx);
    await run.trace.waitFor('started');
    run.cancel();
    expect(await done).toMatchObject({ reason: 'job_canceled' });
    expect(pgrep(`sleep ${secs}`)).toEqual([]);
  });

  it('on hard abort stops at once: no after_script, no failure stages', async () => {
    const secs = uniqueSleep();
    const run = makeRun();
    const done = executorFor(makePlan(m.info, { user: [sleeper(secs)] })).run(m.info, run.ctx);
    await run.trace.waitFor('started');
    run.abort();
    const outcome = await done;

    expect(outcome).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script', 'cleanup']);
    expect(pgrep(`sleep ${secs}`)).toEqual([]);
  });

  it('reports a shutdown cut-off passed as the abort reason as runner_system_failure', async () => {
    const run = makeRun();
    const done = executorFor(makePlan(m.info, { user: [sleeper(uniqueSleep())] })).run(m.info, run.ctx);
    await run.trace.waitFor('started');
    run.abort(shutdownCutOff());
    expect(await done).toEqual({ state: 'failed', reason: 'runner_system_failure', message: 'the runner is shutting down' });
    expect(run.trace.plain()).toContain('ERROR: Job failed (system failure): the runner is shutting down');
  });

  it('a cancel before the job starts runs nothing on the machine', async () => {
    const run = makeRun();
    run.cancel();
    const outcome = await executorFor(makePlan(m.info)).run(m.info, run.ctx);
    expect(outcome).toMatchObject({ reason: 'job_canceled' });
    expect(stagesRun(run.trace)).toEqual([]);
  });
});

describe('losing the machine', () => {
  it('ends the job as runner_system_failure when the machine is killed mid-job', async () => {
    const own = await startMachine();
    try {
      const run = makeRun();
      const done = executorFor(makePlan(own.info, { user: [sleeper(uniqueSleep())] })).run(own.info, run.ctx);
      await run.trace.waitFor('started');
      expect(await own.provider.terminate([own.machine.id])).toEqual({ errors: [] });
      const outcome = await done;

      expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
      expect(run.trace.plain()).toMatch(/ERROR: Job failed \(system failure\): lost SSH connection to /);
      expect(stagesRun(run.trace)).toEqual(['get_sources', 'step_script']);
    } finally {
      await own.dispose();
    }
  });

  it('notices through keepalives a machine that stops answering', async () => {
    const own = await startMachine();
    const frozen: number[] = [];
    try {
      const run = makeRun();
      const ex = executorFor(makePlan(own.info, { user: [sleeper(uniqueSleep())] }), {
        keepaliveIntervalMs: 200,
        keepaliveCountMax: 2,
      });
      const done = ex.run(own.info, run.ctx);
      await run.trace.waitFor('started');
      // Freeze the machine's sshd processes: the TCP connection stays up, nothing answers any more.
      const listener = (JSON.parse(readFileSync(join(own.provider.root, own.machine.id, 'machine.json'), 'utf8')) as { pid: number }).pid;
      frozen.push(listener, ...descendants(listener));
      for (const pid of frozen) process.kill(pid, 'SIGSTOP');

      const outcome = await done;
      expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
      expect(run.trace.plain()).toMatch(/ERROR: Job failed \(system failure\): lost SSH connection to .*Keepalive/i);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
      await own.dispose();
    }
  });
});
