// Several runners in one coordinator (config `runners:`): each asks GitLab with its own feed for its own
// executors, so a runner whose executors are full stops asking while the other keeps taking jobs; a job is
// routed only among its runner's executors; `concurrent` caps all runners together.
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

function job(id: number, variables: Array<{ key: string; value: string }> = []): JobPayload {
  return jobPayload({
    id,
    token: testToken('glcbt-'),
    job_info: { name: `j${id}`, project_id: 1 },
    git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' },
    runner_info: { timeout: 3600 },
    variables: variables.map((v) => ({ ...v, public: true, masked: false })),
  } as Parameters<typeof jobPayload>[0]);
}

/** A runner's queue in GitLab: what its token is handed, and how often it asked. */
class Queue implements JobFeed {
  requests = 0;
  constructor(private readonly jobs: JobPayload[]) {}
  push(j: JobPayload): void {
    this.jobs.push(j);
  }
  async requestJob(): Promise<JobRequestOutcome> {
    this.requests++;
    const j = this.jobs.shift();
    return j ? { kind: 'job', job: j } : { kind: 'none', longPolled: false };
  }
}

function setup(o: { concurrent: number; build: JobPayload[]; deploy: JobPayload[]; buildMax?: number }) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-runners-'));
  dirs.push(spoolDir);
  const ex = { build: new HeldExecutor(), dev: new HeldExecutor(), prod: new HeldExecutor() };
  const queues = { build: new Queue(o.build), deploy: new Queue(o.deploy) };
  const { openChannel, finals, traces } = recordingChannels();
  const fleet = (name: string) => new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: name, coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1 });
  const coordinator = new Coordinator({
    concurrent: o.concurrent,
    checkIntervalMs: 1,
    shutdownTimeoutMs: 60_000,
    outputLimitBytes: 1 << 20,
    spoolDir,
    executors: [
      { name: 'build', maxMachines: o.buildMax ?? 1, executor: ex.build, fleet: fleet('build') },
      { name: 'deploy-prod', maxMachines: 2, executor: ex.prod, fleet: fleet('deploy-prod'), match: { variables: { DEPLOY_ENV: 'prod' } } },
      { name: 'deploy-dev', maxMachines: 2, executor: ex.dev, fleet: fleet('deploy-dev') },
    ],
    runners: [
      { name: 'default', feed: queues.build, executors: ['build'] },
      { name: 'deploy', feed: queues.deploy, executors: ['deploy-prod', 'deploy-dev'] },
    ],
    openChannel,
    clock: systemClock,
    logger: silentLogger,
    banner: (_job, executor, route, runner) => `runner ${runner} executor "${executor}" (${route})\n`,
  });
  return { coordinator, ex, queues, finals, traces };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('several runners in one coordinator', () => {
  it('a runner whose executor is full stops asking; the other runner keeps taking and running jobs', async () => {
    const s = setup({ concurrent: 10, build: [job(1)], deploy: [] });
    const done = s.coordinator.run();
    await until(() => s.ex.build.running.includes(1));
    // The build runner's only executor is full: it stops asking GitLab (its queue sees no new requests).
    await new Promise((r) => setTimeout(r, 20));
    const buildAsks = s.queues.build.requests;
    s.queues.deploy.push(job(2, [{ key: 'DEPLOY_ENV', value: 'prod' }]));
    s.queues.deploy.push(job(3));
    await until(() => s.ex.prod.running.includes(2) && s.ex.dev.running.includes(3));
    expect(s.queues.build.requests).toBe(buildAsks);
    // A job that would match the build executor by its (absent) rules never leaves its runner's executors.
    expect(s.ex.build.running).toEqual([1]);
    s.ex.prod.finish(2);
    s.ex.dev.finish(3);
    await until(() => s.finals.size === 2);
    expect(s.traces.get(2)!.split('\n')[0]).toBe('runner deploy executor "deploy-prod" (matched DEPLOY_ENV="prod")');
    expect(s.traces.get(3)!.split('\n')[0]).toBe('runner deploy executor "deploy-dev" (default route (no match rules))');
    // Room again on build: its runner asks again.
    s.ex.build.finish(1);
    await until(() => s.queues.build.requests > buildAsks);
    s.coordinator.stop();
    await done;
    expect(s.finals.get(1)?.state).toBe('success');
  });

  it('concurrent caps all runners together', async () => {
    const s = setup({ concurrent: 2, buildMax: 5, build: [job(1), job(2), job(3)], deploy: [job(4), job(5)] });
    const done = s.coordinator.run();
    const running = () => s.ex.build.running.length + s.ex.dev.running.length + s.ex.prod.running.length;
    await until(() => running() === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(running()).toBe(2);
    for (const id of [...s.ex.build.running]) s.ex.build.finish(id);
    for (const id of [...s.ex.dev.running]) s.ex.dev.finish(id);
    await until(() => s.finals.size >= 2 && running() === 2);
    s.coordinator.stop();
    s.coordinator.stop();
    await done;
    expect(s.finals.size).toBeGreaterThanOrEqual(4);
  });
});
