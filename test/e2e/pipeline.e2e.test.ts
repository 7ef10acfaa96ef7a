import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
});

describe('e2e: pipelines, capacity and shutdown', () => {
  it('passes artifacts from one job to the next', async () => {
    stack = await startStack();
    const p = await createSimplePipeline(stack.fake, [
      { name: 'build', stage: 'build', script: ['mkdir -p out', 'echo "artifact-content-42" > out/result.txt'], artifacts: { paths: ['out/'] } },
      { name: 'use', stage: 'test', dependencies: ['build'], script: ['cat out/result.txt', 'grep -q artifact-content-42 out/result.txt'] },
    ]);
    const build = await waitFinished(stack.fake, p.jobIds[0]!);
    expect(build.state).toBe('success');
    expect(build.artifacts.map((a) => a.type)).toContain('archive');
    const use = await waitFinished(stack.fake, p.jobIds[1]!);
    expect(use.state).toBe('success');
    expect(use.traceText).toContain('artifact-content-42');
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  });

  it('rides out a burst of 5xx answers on job requests', async () => {
    stack = await startStack();
    stack.fake.injectFaults({ jobRequest: [502, 503, 500, 503, 502, 500, 503] });
    const p = await createSimplePipeline(stack.fake, [{ name: 'after-burst', script: ['echo survived'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 90_000);
    expect(job.state).toBe('success');
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  });

  it('never runs more than `concurrent: 2` jobs of six', async () => {
    stack = await startStack({ concurrent: 2 });
    const p = await createSimplePipeline(
      stack.fake,
      Array.from({ length: 6 }, (_, i) => ({ name: `j${i}`, script: ['sleep 1', `echo job ${i}`] })),
    );
    for (const id of p.jobIds) expect((await waitFinished(stack.fake, id, 120_000)).state).toBe('success');
    expect(stack.fake.maxConcurrentRunning).toBeLessThanOrEqual(2);
    expect(stack.fake.maxConcurrentRunning).toBe(2);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  });

  it('on SIGTERM lets the running job finish, removes machines and exits 0', async () => {
    stack = await startStack({ extra: [] });
    const p = await createSimplePipeline(stack.fake, [{ name: 'long', script: ['sleep 4', 'echo finished-after-sigterm'] }]);
    await stack.fake.waitForJobState(p.jobIds[0]!, ['running'], 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    const code = await stack.stop(60_000);
    expect(code).toBe(0);
    const job = stack.fake.job(p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(job.traceText).toContain('finished-after-sigterm');
    expect(stack.log()).toMatch(/stopping: no new jobs/);
    expect(stack.fake.violations).toEqual([]);
  });

  it('SIGQUIT (gitlab-runner\'s graceful stop) drains the same way and exits 0', async () => {
    stack = await startStack({ extra: [] });
    const p = await createSimplePipeline(stack.fake, [{ name: 'long', script: ['sleep 2', 'echo finished-after-sigquit'] }]);
    await stack.fake.waitForJobState(p.jobIds[0]!, ['running'], 30_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(await stack.stop(60_000, 'SIGQUIT')).toBe(0);
    const job = stack.fake.job(p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(job.traceText).toContain('finished-after-sigquit');
    expect(stack.fake.violations).toEqual([]);
  });

  it('a SIGTERM during start-up still ends in a clean exit 0', async () => {
    stack = await startStack();
    // The coordinator has verified its token: it is now in start-up (GC, recovery), before the job loop.
    const verified = () => stack!.fake.requests.some((r) => r.path.endsWith('/runners/verify'));
    for (let i = 0; i < 4000 && !verified(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(verified()).toBe(true);
    expect(await stack.stop(30_000)).toBe(0);
    expect(stack.log()).toMatch(/coordinator stopped/);
    expect(stack.fake.violations).toEqual([]);
  });

  it('cuts off a job that outlasts shutdownTimeout as a system failure', async () => {
    stack = await startStack({ extra: ['shutdownTimeout: 2s'] });
    const p = await createSimplePipeline(stack.fake, [{ name: 'stuck', script: ['sleep 120'] }]);
    await stack.fake.waitForJobState(p.jobIds[0]!, ['running'], 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await stack.stop(60_000)).toBe(0);
    const job = stack.fake.job(p.jobIds[0]!);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'runner_system_failure' });
    expect(job.traceText).toMatch(/shut down/);
    expect(stack.fake.violations).toEqual([]);
  });
});

describe('e2e: crash recovery', () => {
  it('after a kill -9, the restarted coordinator continues the interrupted job from its machine and reports its real result', async () => {
    stack = await startStack();
    const marker = `fr_e2e_crash_${process.pid}_${Date.now()}`;
    const p = await createSimplePipeline(stack.fake, [{ name: 'crashed', script: ['echo before-crash', `bash -c 'exec -a ${marker} sleep 4'`, 'echo after-crash'] }]);
    const id = p.jobIds[0]!;
    await stack.fake.waitForJobState(id, ['running'], 30_000);
    for (let i = 0; i < 100 && !stack.fake.job(id).traceText.includes('before-crash'); i++) await new Promise((r) => setTimeout(r, 100));
    await stack.crashAndRestart();
    const job = await waitFinished(stack.fake, id, 60_000);
    expect(job).toMatchObject({ state: 'success' });
    expect(job.traceText.match(/^before-crash\r?$/gm)).toHaveLength(1);
    expect(job.traceText).toContain('after-crash');
    expect(pgrepCount(marker)).toBe(0);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 90_000);
});

function pgrepCount(pattern: string): number {
  try {
    return execFileSync('pgrep', ['-f', pattern]).toString().trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

export function machineDirsLeft(root: string): string[] {
  return existsSync(root) ? readdirSync(root) : [];
}
