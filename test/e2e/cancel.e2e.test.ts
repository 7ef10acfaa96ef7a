import { afterEach, describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
});

describe('e2e: cancellation', () => {
  it('graceful cancel stops the script, runs after_script with canceled, and the job ends canceled', async () => {
    stack = await startStack({ fake: { traceUpdateIntervalS: 1 } });
    const p = await createSimplePipeline(stack.fake, [
      { name: 'cancel-me', script: ['echo started', 'sleep 60', 'echo not-reached'], after_script: ['echo "after: $CI_JOB_STATUS"'] },
    ]);
    const id = p.jobIds[0]!;
    await stack.fake.waitForJobState(id, ['running'], 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    stack.fake.cancelJob(id);
    const job = await waitFinished(stack.fake, id, 60_000);
    expect(job.state).toBe('canceled');
    expect(job.traceText).toContain('after: canceled');
    expect(job.traceText).not.toContain('not-reached');
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  });

  it('a job failed server-side is aborted at once: no after_script', async () => {
    stack = await startStack({ fake: { traceUpdateIntervalS: 1 } });
    const p = await createSimplePipeline(stack.fake, [{ name: 'drop-me', script: ['sleep 60'], after_script: ['echo after-should-not-run'] }]);
    const id = p.jobIds[0]!;
    await stack.fake.waitForJobState(id, ['running'], 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    stack.fake.dropJob(id);
    // The coordinator notices on its next trace update and frees its slot; it then exits cleanly.
    await new Promise((r) => setTimeout(r, 4000));
    expect(await stack.stop(30_000)).toBe(0);
    const job = stack.fake.job(id);
    expect(job.state).toBe('failed');
    expect(job.traceText).not.toContain('after-should-not-run');
    expect(stack.log()).toMatch(/aborted by GitLab/);
    expect(stack.fake.violations).toEqual([]);
  });
});
