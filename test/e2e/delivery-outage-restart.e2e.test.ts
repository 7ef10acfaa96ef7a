// The same 7-minute outage, with the coordinator killed (SIGKILL) and started again in the middle of it:
// the job's machine kept its records until delivery (the journal on this disk has a second copy), so the new
// process delivers the job's real result once GitLab is back, not a "coordinator restarted" failure.
import { describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished } from './harness.js';
import { BACKOFF_CAP, LINES, linesInOrder, OUTAGE_MS, waitForRequest } from './outage.js';

describe('e2e: final state through a GitLab outage and a coordinator restart', () => {
  it('a restarted coordinator delivers the real result and the whole trace after the outage', async () => {
    const stack = await startStack({ gitlabExtra: BACKOFF_CAP });
    try {
      stack.fake.injectFaults({ outageOnFinalPut: { status: 502, durationMs: OUTAGE_MS } });
      const p = await createSimplePipeline(stack.fake, [{ name: 'outage-and-restart', script: [...LINES, 'exit 3'] }]);
      const id = p.jobIds[0]!;
      const outageStart = await waitForRequest(stack.fake, (r) => r.method === 'PUT' && r.path === `/api/v4/jobs/${id}` && r.status === 502, 60_000);
      await new Promise((r) => setTimeout(r, 30_000));
      await stack.crashAndRestart();
      const job = await waitFinished(stack.fake, id, OUTAGE_MS + 3 * 60_000);
      expect(job).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 3 });
      expect(job.finishedAt! - outageStart.at).toBeGreaterThanOrEqual(OUTAGE_MS);
      expect(linesInOrder(job.traceText)).toBe(true);
      expect(job.traceText).toContain('exit code 3');
      expect(job.traceText).not.toContain('coordinator stopped unexpectedly');
      // The job's machine kept its records (the result) until delivery: the restarted process continues
      // the ended job from the machine, before the journal on this disk would be needed.
      expect(stack.log()).toContain('continuing a job found on its machine');
      expect(stack.log()).not.toMatch(/delivered the final state of a job that ended before a restart/);
      expect(await stack.stop()).toBe(0);
      expect(stack.fake.violations).toEqual([]);
    } finally {
      await stack.cleanup();
    }
  }, OUTAGE_MS + 5 * 60_000);
});
