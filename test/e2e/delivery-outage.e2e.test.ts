// GitLab away for 7 minutes from a job's first final PUT on (every /api/v4/jobs* call answers 502, as a
// load balancer in front of a GitLab being upgraded does): the built CLI keeps the final state and the whole
// trace, retries with a capped backoff, and delivers both once GitLab is back. The old client gave up after
// 10 rounds (4–6 minutes) and the job stayed "running" until its timeout.
import { describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished } from './harness.js';
import { BACKOFF_CAP, LINES, linesInOrder, OUTAGE_MS, waitForLog, waitForRequest } from './outage.js';

describe('e2e: final state through a 7-minute GitLab outage', () => {
  it('delivers the final state and the whole trace after the outage', async () => {
    const stack = await startStack({ gitlabExtra: BACKOFF_CAP });
    try {
      stack.fake.injectFaults({ outageOnFinalPut: { status: 502, durationMs: OUTAGE_MS } });
      const p = await createSimplePipeline(stack.fake, [{ name: 'through-outage', script: LINES }]);
      const id = p.jobIds[0]!;
      const outageStart = await waitForRequest(stack.fake, (r) => r.method === 'PUT' && r.path === `/api/v4/jobs/${id}` && r.status === 502, 60_000);
      const job = await waitFinished(stack.fake, id, OUTAGE_MS + 3 * 60_000);
      expect(job.state).toBe('success');
      expect(job.finishedAt! - outageStart.at).toBeGreaterThanOrEqual(OUTAGE_MS);
      expect(linesInOrder(job.traceText)).toBe(true);
      expect(job.traceText).toContain('Job succeeded');
      await waitForLog(() => stack.log(), /final job state delivered after GitLab was unavailable/);
      const log = stack.log();
      expect(log).toMatch(/final job state not delivered yet; retrying/);
      expect(log).toMatch(/"waitingForS":[1-9]\d{2}/); // a line per attempt says how long it has waited
      expect(log).toMatch(/final job state delivered after GitLab was unavailable/);
      expect(stack.log().match(/"msg":"job finished"/g)).toHaveLength(1);
      expect(await stack.stop()).toBe(0);
      expect(stack.fake.violations).toEqual([]);
    } finally {
      await stack.cleanup();
    }
  }, OUTAGE_MS + 5 * 60_000);
});
