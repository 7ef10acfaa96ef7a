// The coordinator's side of the instance agent over real SSH: the heartbeat while a job runs and while an
// idle machine's connection is held, and an interruption notice that stops the job.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { RecordingTrace, executorFor, makePlan, makeRun, stage, stagesRun, startMachine, type TestMachine } from './harness.js';

let m: TestMachine;
beforeAll(async () => {
  m = await startMachine();
});
afterAll(async () => {
  await m?.dispose();
});

const heartbeat = () => join(m.info.stateDir, 'heartbeat');
const notice = () => join(m.info.stateDir, 'interruption');
beforeEach(() => {
  rmSync(heartbeat(), { force: true });
  rmSync(notice(), { force: true });
});

describe('machine watch over SSH', () => {
  it('touches the heartbeat while a job runs', async () => {
    const run = makeRun();
    const outcome = await executorFor(makePlan(m.info)).run(m.info, run.ctx);
    expect(outcome).toEqual({ state: 'success' });
    expect(existsSync(heartbeat())).toBe(true);
  });

  it('stops a job on a machine that reports an interruption notice, and says so in the trace', async () => {
    writeFileSync(notice(), '{"action":"terminate","time":"2026-12-06T22:10:00Z"}\n', { mode: 0o644 });
    const trace = new RecordingTrace();
    const run = makeRun(trace);
    const plan = makePlan(m.info, { user: [stage('step_script', 'for i in $(seq 1 100); do sleep 0.1; done; echo user-stage-ran')] });
    const outcome = await executorFor(plan).run(m.info, run.ctx);
    expect(outcome).toEqual({
      state: 'failed',
      reason: 'runner_system_failure',
      message: 'the machine got an interruption notice from its cloud (action terminate, at 2026-12-06T22:10:00Z)',
      interruption: { action: 'terminate', time: '2026-12-06T22:10:00Z' },
    });
    expect(trace.plain()).not.toContain('user-stage-ran');
    expect(stagesRun(trace)).not.toContain('after_script');
    expect(trace.plain()).toContain("WARNING: the machine got an interruption notice from its cloud (action terminate, at 2026-12-06T22:10:00Z): the job's stages were stopped");
    expect(trace.plain()).not.toContain('Job failed');
  });

  it('stops a job when the notice comes mid-job, pushed by the machine between heartbeats', async () => {
    const trace = new RecordingTrace();
    const run = makeRun(trace);
    const marker = join(m.info.stateDir, 'user-stage-started');
    rmSync(marker, { force: true });
    const plan = makePlan(m.info, { user: [stage('step_script', `: > '${marker}'; for i in $(seq 1 300); do sleep 0.1; done; echo user-stage-ran`)] });
    const running = executorFor(plan).run(m.info, run.ctx);
    for (let i = 0; i < 300 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 20));
    writeFileSync(notice(), '{"action":"stop","time":"2026-12-07T13:00:00Z"}\n', { mode: 0o644 });
    const outcome = await running;
    expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure', interruption: { action: 'stop', time: '2026-12-07T13:00:00Z' } });
    expect(trace.plain()).not.toContain('user-stage-ran');
  });

  it('runs its notice loop on the machine while the job runs, and leaves nothing of it after', async () => {
    const loops = () => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(notice()) && l.includes('read -r -t'));
    // Longer than the first look (5 s), after which the loop takes over from the heartbeat.
    const plan = makePlan(m.info, { user: [stage('step_script', 'sleep 6.5')] });
    let seen = 0;
    const poll = setInterval(() => (seen = Math.max(seen, loops().length)), 200);
    try {
      const outcome = await executorFor(plan).run(m.info, makeRun().ctx);
      expect(outcome).toEqual({ state: 'success' });
    } finally {
      clearInterval(poll);
    }
    expect(seen).toBe(1);
    for (let i = 0; i < 100 && loops().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(loops()).toEqual([]);
  });

  it('touches an idle machine\'s heartbeat through the held connection', async () => {
    const executor = executorFor(makePlan(m.info));
    await executor.warm(m.info, () => undefined);
    try {
      for (let i = 0; i < 50 && !existsSync(heartbeat()); i++) await new Promise((r) => setTimeout(r, 20));
      expect(statSync(heartbeat()).isFile()).toBe(true);
    } finally {
      executor.cool(m.info);
    }
  });

  it('lets go of an idle machine that reports an interruption notice, telling the pool', async () => {
    writeFileSync(notice(), '{"action":"stop","time":"2026-12-06T22:10:00Z"}\n', { mode: 0o644 });
    const executor = executorFor(makePlan(m.info));
    const lost = new Promise<Error>((resolve) => void executor.warm(m.info, resolve));
    await expect(lost).resolves.toMatchObject({ name: 'MachineInterruptedError', interruption: { action: 'stop', time: '2026-12-06T22:10:00Z' } });
    executor.cool(m.info);
  });
});
