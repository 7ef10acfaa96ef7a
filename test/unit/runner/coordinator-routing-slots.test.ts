// Several executors in one runner: a full executor never stops the runner from asking GitLab for jobs while
// another has room; a job routed to the full one waits for its slot, saying so in its trace, and runs once
// one is free. The trace's first lines name the chosen executor and the rule that chose it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { JobPayload } from '../../../src/core/job.js';
import { silentLogger } from '../../../src/core/logger.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { Coordinator } from '../../../src/runner/coordinator.js';
import type { JobFeed, JobRequestOutcome } from '../../../src/runner/ports.js';
import { HeldExecutor } from '../../helpers/held-executor.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { recordingChannels } from '../../helpers/recording-channel.js';
import { testToken } from '../../helpers/tokens.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A job with a docker:dind service goes to "dind", anything else to "plain". */
function job(id: number, dind: boolean): JobPayload {
  return jobPayload({
    id,
    token: testToken('glcbt-'),
    job_info: { name: `j${id}`, project_id: 1 },
    git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' },
    runner_info: { timeout: 3600 },
    variables: [],
    ...(dind && { services: [{ name: 'docker:27-dind', alias: null, entrypoint: null, command: null, variables: [], pull_policy: null, ports: [] }] }),
  } as Parameters<typeof jobPayload>[0]);
}

function setup(queue: JobPayload[]) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-routes-'));
  dirs.push(spoolDir);
  const dind = new HeldExecutor();
  const plain = new HeldExecutor();
  const { openChannel, finals, traces } = recordingChannels();
  let requests = 0;
  const feed: JobFeed = {
    async requestJob(): Promise<JobRequestOutcome> {
      requests++;
      const j = queue.shift();
      return j ? { kind: 'job', job: j } : { kind: 'none', longPolled: false };
    },
  };
  const fleet = (name: string) => new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: name, coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1 });
  const coordinator = new Coordinator({
    concurrent: 10, checkIntervalMs: 1, shutdownTimeoutMs: 60_000, outputLimitBytes: 1 << 20, spoolDir,
    executors: [
      { name: 'dind', maxMachines: 1, executor: dind, fleet: fleet('dind'), match: { services: ['docker:'] } },
      { name: 'plain', maxMachines: 5, executor: plain, fleet: fleet('plain') },
    ],
    feed,
    openChannel,
    clock: systemClock,
    logger: silentLogger,
    banner: (_job, executor, route) => `executor "${executor}" (${route})\n`,
  });
  return { coordinator, dind, plain, finals, traces, requests: () => requests };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('routing between executors with their own slots', () => {
  it('keeps taking jobs for an executor with room while another is full; a job routed to the full one waits for its slot', async () => {
    const s = setup([job(1, true), job(2, true), job(3, false), job(4, false)]);
    const done = s.coordinator.run();
    // dind holds job 1 (its only slot); job 2 waits for it; the plain jobs still come and run.
    await until(() => s.dind.running.includes(1) && s.plain.running.length === 2);
    expect(s.dind.running).toEqual([1]);
    s.dind.finish(1);
    await until(() => s.dind.running.includes(2));
    s.dind.finish(2);
    s.plain.finish(3);
    s.plain.finish(4);
    await until(() => s.finals.size === 4);
    expect(s.traces.get(2)).toContain('Waiting for executor "dind": all 1 of its slots are in use');
    expect(s.traces.get(2)).toMatch(/Executor "dind" has a free slot after \d+ s/);
    expect(s.traces.get(3)).not.toContain('Waiting for executor');
    // The first line names the executor and the rule that chose it.
    expect(s.traces.get(1)!.split('\n')[0]).toBe('executor "dind" (matched services docker:*)');
    expect(s.traces.get(3)!.split('\n')[0]).toBe('executor "plain" (default route (no match rules))');
    expect([...s.finals.values()].every((o) => o.state === 'success')).toBe(true);
    s.coordinator.stop();
    await done;
  });

  it('a forced stop fails the jobs still waiting for a full executor, each with a final state', async () => {
    const s = setup([job(1, true), job(2, true), job(3, true)]);
    const done = s.coordinator.run();
    await until(() => s.dind.running.includes(1));
    // Job 2 waits for dind; plain has room, so a third job may be asked for; it waits too.
    await until(() => s.requests() >= 3);
    expect(s.dind.running).toEqual([1]);
    s.dind.finish(1);
    await until(() => s.dind.running.length === 1 && s.dind.running[0] !== 1);
    s.coordinator.stop();
    s.coordinator.stop(); // cut off: waiting jobs fail, none is left running
    await done;
    expect(s.finals.size).toBe(3);
  });
});
