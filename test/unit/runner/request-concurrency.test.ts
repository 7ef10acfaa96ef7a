// requestConcurrency: several job requests in flight at once, each holding the slots it reserved.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Executor, JobRunContext } from '../../../src/core/executor.js';
import type { JobPayload } from '../../../src/core/job.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { JobOutcome } from '../../../src/core/outcome.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { Coordinator } from '../../../src/runner/coordinator.js';
import type { JobChannel, JobFeed, JobRequestOutcome } from '../../../src/runner/ports.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { StepClock } from '../../helpers/step-clock.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function job(id: number): JobPayload {
  return jobPayload({
    id, token: `glcbt-job${id}secret`, job_info: { name: `j${id}`, project_id: 1 },
    git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' }, runner_info: { timeout: 60 }, variables: [],
  });
}

/** A feed whose requests wait until the test answers them, in any order. */
class HeldFeed implements JobFeed {
  readonly pending: Array<(o: JobRequestOutcome) => void> = [];
  inFlight = 0;
  peakInFlight = 0;
  requests = 0;
  async requestJob(signal: AbortSignal): Promise<JobRequestOutcome> {
    this.requests++;
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    try {
      return await new Promise<JobRequestOutcome>((resolve) => {
        const onAbort = () => resolve({ kind: 'none', longPolled: true });
        this.pending.push((o) => {
          signal.removeEventListener('abort', onAbort);
          resolve(o);
        });
        signal.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      this.inFlight--;
    }
  }
  /** Answers the request at `index` (0 = oldest). */
  answer(index: number, o: JobRequestOutcome): void {
    const [resolve] = this.pending.splice(index, 1);
    if (!resolve) throw new Error(`no request waiting at ${index}`);
    resolve(o);
  }
}

/** Jobs end when the test says so; counts how often each job id ran. */
class CountingExecutor implements Executor {
  readonly style = 'shell' as const;
  active = 0;
  readonly runs = new Map<number, number>();
  private readonly releases: Array<() => void> = [];
  async run(_m: unknown, ctx: JobRunContext): Promise<JobOutcome> {
    this.active++;
    this.runs.set(ctx.job.id, (this.runs.get(ctx.job.id) ?? 0) + 1);
    try {
      await new Promise<void>((resolve, reject) => {
        this.releases.push(resolve);
        ctx.abort.addEventListener('abort', () => reject(ctx.abort.reason), { once: true });
      });
      return { state: 'success' };
    } catch {
      return { state: 'failed', reason: 'job_canceled' };
    } finally {
      this.active--;
    }
  }
  finishAll(): void {
    this.releases.splice(0).forEach((r) => r());
  }
}

function setup(o: { concurrent: number; maxMachines: number; requestConcurrency?: number }) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-reqc-'));
  dirs.push(spoolDir);
  const executor = new CountingExecutor();
  const feed = new HeldFeed();
  const finals = new Map<number, JobOutcome>();
  const coordinator = new Coordinator({
    concurrent: o.concurrent,
    ...(o.requestConcurrency !== undefined && { requestConcurrency: o.requestConcurrency }),
    checkIntervalMs: 1, shutdownTimeoutMs: 60_000, outputLimitBytes: 1 << 20, spoolDir,
    executors: [{ name: 'local', maxMachines: o.maxMachines, executor, fleet: new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1 }) }],
    feed,
    openChannel: (j): JobChannel => ({
      acknowledge: async () => 'ok',
      start: () => undefined,
      finish: async (outcome) => {
        finals.set(j.id, outcome);
        return 'delivered';
      },
      abandon: () => undefined,
    }),
    clock: systemClock, logger: silentLogger, banner: () => 'Running with fleetrunner\n',
  });
  return { coordinator, executor, feed, finals };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('Coordinator with requestConcurrency', () => {
  it('sends one request at a time by default', async () => {
    const { coordinator, feed } = setup({ concurrent: 4, maxMachines: 4 });
    const done = coordinator.run();
    await until(() => feed.requests === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(feed.peakInFlight).toBe(1);
    coordinator.stop();
    await done;
  });

  it('keeps requestConcurrency requests in flight, each holding its slots, so requests plus jobs never pass concurrent', async () => {
    const { coordinator, executor, feed } = setup({ concurrent: 4, maxMachines: 10, requestConcurrency: 3 });
    const done = coordinator.run();
    await until(() => feed.inFlight === 3);
    feed.answer(1, { kind: 'job', job: job(1) }); // answers come back in any order
    feed.answer(0, { kind: 'job', job: job(2) });
    await until(() => executor.active === 2);
    // 2 running + 2 requests = concurrent: a third request would hold a slot nobody has.
    await until(() => feed.inFlight === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(feed.inFlight + executor.active).toBe(4);
    feed.answer(0, { kind: 'job', job: job(3) });
    feed.answer(0, { kind: 'job', job: job(4) });
    await until(() => executor.active === 4);
    expect(feed.inFlight).toBe(0);
    executor.finishAll(); // room again: requests go out as slots come back
    await until(() => feed.inFlight === 3);
    coordinator.stop();
    await done;
    expect(feed.peakInFlight).toBe(3);
  });

  it('runs every job handed out exactly once when answers race', async () => {
    const { coordinator, executor, feed, finals } = setup({ concurrent: 8, maxMachines: 8, requestConcurrency: 8 });
    const done = coordinator.run();
    let next = 1;
    while (next <= 40) {
      await until(() => feed.pending.length > 0);
      // Answer the newest request with a job, sometimes an older one with "no job".
      feed.answer(feed.pending.length - 1, { kind: 'job', job: job(next++) });
      if (feed.pending.length > 1 && next % 3 === 0) feed.answer(0, { kind: 'none', longPolled: false });
      if (executor.active >= 6) executor.finishAll();
      await new Promise((r) => setImmediate(r));
    }
    await until(() => executor.active + finals.size === 40);
    executor.finishAll();
    await until(() => finals.size === 40);
    coordinator.stop();
    await done;
    expect([...executor.runs.values()].every((n) => n === 1)).toBe(true);
    expect(executor.runs.size).toBe(40);
  });

  describe('pace: a runner with no job waiting asks once per checkInterval, however many requesters it has', () => {
    /** A feed that answers after `latencyMs` (0: at once): "no job", or a job from `jobs` when one is queued. */
    class InstantFeed implements JobFeed {
      readonly at: number[] = [];
      readonly jobs: JobPayload[] = [];
      constructor(private readonly clock: StepClock, private readonly latencyMs: number) {}
      async requestJob(): Promise<JobRequestOutcome> {
        this.at.push(this.clock.now());
        if (this.latencyMs > 0) await this.clock.sleep(this.latencyMs);
        const j = this.jobs.shift();
        return j ? { kind: 'job', job: j } : { kind: 'none', longPolled: false };
      }
    }
    function paced(o: { concurrent?: number; requestConcurrency?: number; latencyMs?: number } = {}) {
      const clock = new StepClock();
      const spoolDir = mkdtempSync(join(tmpdir(), 'fr-reqc-'));
      dirs.push(spoolDir);
      const feed = new InstantFeed(clock, o.latencyMs ?? 0);
      const executor = new CountingExecutor();
      const coordinator = new Coordinator({
        concurrent: o.concurrent ?? 8, requestConcurrency: o.requestConcurrency ?? 4,
        checkIntervalMs: 3_000, shutdownTimeoutMs: 60_000, outputLimitBytes: 1 << 20, spoolDir,
        executors: [{ name: 'local', maxMachines: 8, executor, fleet: new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock, retryDelayMs: 1 }) }],
        feed,
        openChannel: (): JobChannel => ({ acknowledge: async () => 'ok', start: () => undefined, finish: async () => 'delivered', abandon: () => undefined }),
        clock, logger: silentLogger, banner: () => 'Running with fleetrunner\n',
      });
      return { clock, feed, executor, coordinator };
    }

    it('four requesters and an empty queue: one request every 3 s, as gitlab-runner\'s feeder', async () => {
      const { clock, feed, coordinator } = paced();
      const t0 = clock.now();
      const done = coordinator.run();
      await clock.advance(30_000);
      // At 0, 3 s, …, 30 s: eleven, never two within an interval (four requesters each on its own interval
      // asked 44 times).
      expect(feed.at.map((t) => t - t0)).toEqual(Array.from({ length: 11 }, (_, i) => i * 3_000));
      coordinator.stop();
      await clock.advance(1_000);
      await done;
    });

    it('a request that brought a job is followed at once by the next, the rest of the lane keeps its pace', async () => {
      const { clock, feed, executor, coordinator } = paced();
      const t0 = clock.now();
      feed.jobs.push(job(1), job(2));
      const done = coordinator.run();
      await clock.advance(2_000);
      // 0: job 1; at once: job 2; at once: no job, then nothing until 3 s.
      expect(feed.at.map((t) => t - t0)).toEqual([0, 0, 0]);
      await clock.advance(1_500);
      expect(feed.at.map((t) => t - t0)).toEqual([0, 0, 0, 3_000]);
      executor.finishAll();
      coordinator.stop();
      await clock.advance(1_000);
      await done;
    });
    it('after waiting for room, and after a request made at once on a job, the lane keeps its pace', async () => {
      const { clock, feed, executor, coordinator } = paced({ concurrent: 1 });
      const t0 = clock.now();
      feed.jobs.push(job(1));
      const done = coordinator.run();
      await clock.advance(10_000);
      executor.finishAll(); // room again at 10 s: one request then, the next 3 s later (not two at once)
      await clock.advance(6_500);
      expect(feed.at.map((t) => t - t0)).toEqual([0, 10_000, 13_000, 16_000]);
      coordinator.stop();
      await clock.advance(1_000);
      await done;
    });
    it('a run of jobs longer than the interval, then no job: the next request waits an interval from the last', async () => {
      const { clock, feed, executor, coordinator } = paced({ requestConcurrency: 1, latencyMs: 1_000 });
      const t0 = clock.now();
      feed.jobs.push(job(1), job(2), job(3), job(4));
      const done = coordinator.run();
      await clock.advance(8_000);
      // Each job's request followed at once by the next; the one at 4 s found none (answered at 5 s), so
      // the next goes at 7 s, not at once.
      expect(feed.at.map((t) => t - t0)).toEqual([0, 1_000, 2_000, 3_000, 4_000, 7_000]);
      executor.finishAll();
      coordinator.stop();
      await clock.advance(2_000);
      await done;
    });
  });
});
