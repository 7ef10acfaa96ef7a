// A crash with 20 jobs running: the next coordinator continues the 20 from their machines and reports them
// (GitLab slows each report down with a 202 "still persisting") beside its loop, and takes a new job
// before they are all reported.
import { describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished } from './harness.js';

const RUNNING = 20;

describe('e2e: recovery never delays new work', () => {
  it('takes a new job while the jobs of a crashed run are still being reported', async () => {
    const stack = await startStack({
      concurrent: RUNNING + 2,
      executors: ['  - name: local', '    provider: local', '    style: shell', `    maxMachines: ${RUNNING + 2}`],
    });
    try {
      const p = await createSimplePipeline(stack.fake, Array.from({ length: RUNNING }, (_, i) => ({ name: `long-${i}`, script: ['echo started', 'sleep 20'] })));
      for (const id of p.jobIds) await stack.fake.waitForJobState(id, ['running'], 120_000);
      for (let i = 0; i < 300 && !p.jobIds.every((id) => stack.fake.job(id).traceText.includes('started')); i++) await new Promise((r) => setTimeout(r, 100));
      // Each interrupted job's final PUT gets a 202 with a 15 s interval: reporting them one by one would
      // take 5 minutes before a new job could start.
      for (const id of p.jobIds) stack.fake.injectFaults({ forJob: id, finalPut202: 1 });
      stack.fake.injectFaults({ traceUpdateIntervalS: 15 });
      await stack.crashAndRestart();
      const fresh = await createSimplePipeline(stack.fake, [{ name: 'fresh', script: ['echo fresh work'] }]);
      const done = await waitFinished(stack.fake, fresh.jobIds[0]!, 120_000);
      expect(done.state).toBe('success');
      const old = await Promise.all(p.jobIds.map((id) => waitFinished(stack.fake, id, 180_000)));
      for (const j of old) expect(j, `${j.name}: ${j.failureReason}\n${j.traceText.slice(-1500)}`).toMatchObject({ state: 'success' });
      // The new job started before the first interrupted job was reported.
      const timeline = () => stack.log().split('\n').filter((l) => /took over|coordinator started|job started|continuing a job|job finished|lease/.test(l)).slice(0, 60).join('\n');
      expect(done.startedAt!, timeline()).toBeLessThan(Math.min(...old.map((j) => j.finishedAt!)));
      expect(await stack.stop()).toBe(0);
      expect(stack.fake.violations).toEqual([]);
    } finally {
      await stack.cleanup();
    }
  }, 400_000);
});
