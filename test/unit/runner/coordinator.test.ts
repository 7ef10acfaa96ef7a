import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Executor, JobRunContext } from '../../../src/core/executor.js';
import type { JobPayload } from '../../../src/core/job.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { JobOutcome } from '../../../src/core/outcome.js';
import { DEFAULT_POOL } from '../../../src/core/pool-config.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { Coordinator } from '../../../src/runner/coordinator.js';
import type { JobChannel, JobFeed, JobRequestOutcome } from '../../../src/runner/ports.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function job(id: number): JobPayload {
  return jobPayload({
    id, token: `glcbt-job${id}secret`, job_info: { name: `j${id}`, project_id: 1 },
    git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' }, runner_info: { timeout: 60 }, variables: [],
  });
}

class QueueFeed implements JobFeed {
  requests = 0;
  busyAtRequest: number[] = [];
  constructor(private readonly jobs: JobPayload[], private readonly busy: () => number) {}
  async requestJob(): Promise<JobRequestOutcome> {
    this.requests++;
    this.busyAtRequest.push(this.busy());
    const j = this.jobs.shift();
    return j ? { kind: 'job', job: j } : { kind: 'none', longPolled: false };
  }
}

/** An executor whose jobs end when the test says so. */
class ControlledExecutor implements Executor {
  readonly style = 'shell' as const;
  active = 0;
  peak = 0;
  private releases: Array<() => void> = [];
  async run(_m: unknown, ctx: JobRunContext): Promise<JobOutcome> {
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    ctx.trace.write(`running ${ctx.job.id} with ${ctx.job.token}\n`);
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
  finishOne(): boolean {
    const r = this.releases.shift();
    r?.();
    return !!r;
  }
}

type Ack = 'ok' | 'drop' | 'canceled';
function setup(opts: { jobs: number; concurrent: number; maxMachines: number; shutdownTimeoutMs?: number; ack?: Ack | (() => Promise<Ack>); idleCount?: number; holdDelivery?: (id: number) => Promise<'delivered' | 'pending'> | undefined; deliverySlotGraceMs?: number }) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-coord-'));
  dirs.push(spoolDir);
  const executor = new ControlledExecutor();
  const provider = new MemoryProvider();
  const finals = new Map<number, JobOutcome>();
  const traces = new Map<number, string>();
  const queue = Array.from({ length: opts.jobs }, (_, i) => job(i + 1));
  const feed = new QueueFeed(queue, () => executor.active);
  const fleet = new ExecutorFleet({ provider, tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1, ...(opts.idleCount && { pool: { ...DEFAULT_POOL, idleCount: opts.idleCount }, maxMachines: opts.maxMachines }) });
  const coordinator = new Coordinator({
    concurrent: opts.concurrent, checkIntervalMs: 1, shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 60_000, outputLimitBytes: 1 << 20, spoolDir,
    executors: [{ name: 'local', maxMachines: opts.maxMachines, executor, fleet }],
    feed,
    openChannel: (j, log): JobChannel => ({
      acknowledge: async () => (typeof opts.ack === 'function' ? opts.ack() : opts.ack ?? 'ok'),
      start: () => undefined,
      finish: async (outcome) => {
        finals.set(j.id, outcome);
        traces.set(j.id, Buffer.from(await log.read(0, log.size)).toString());
        return (await opts.holdDelivery?.(j.id)) ?? 'delivered';
      },
      abandon: () => undefined,
    }),
    clock: systemClock, logger: silentLogger, banner: () => 'Running with fleetrunner\n',
    ...(opts.deliverySlotGraceMs !== undefined && { deliverySlotGraceMs: opts.deliverySlotGraceMs }),
  });
  return { coordinator, executor, provider, feed, finals, traces, fleet, queue };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

/** One job, handed out once an idle machine is up, on that machine while GitLab's answer to its
 *  acknowledgement is still to come (`answer` gives it). */
async function onIdleMachineBeforeTheAnswer() {
  let answer!: (a: Ack) => void;
  const s = setup({ jobs: 0, concurrent: 1, maxMachines: 2, idleCount: 1, ack: () => new Promise<Ack>((r) => (answer = r)) });
  const done = s.coordinator.run();
  await s.fleet.reconcile();
  await until(() => s.fleet.counts().idle === 1);
  s.queue.push(job(1));
  await until(() => s.executor.active === 1);
  return { ...s, done, answer: (a: Ack) => answer(a) };
}

describe('Coordinator', () => {
  it('gives a job\'s slots back when its result has been on its way to GitLab for the grace, not before', async () => {
    let deliverFirst: (v: 'delivered') => void = () => undefined;
    const held = new Promise<'delivered'>((r) => (deliverFirst = r));
    const { coordinator, executor, feed, finals } = setup({ jobs: 2, concurrent: 1, maxMachines: 1, deliverySlotGraceMs: 300, holdDelivery: (id) => (id === 1 ? held : undefined) });
    const done = coordinator.run();
    await until(() => executor.active === 1);
    executor.finishOne(); // job 1 ran; GitLab is slow to take its result
    await until(() => finals.has(1));
    expect(feed.requests).toBe(1); // within the grace the slot is still job 1's
    await until(() => executor.active === 1); // past it, job 2 runs while job 1's delivery goes on
    executor.finishOne();
    await until(() => finals.has(2));
    deliverFirst('delivered');
    coordinator.stop();
    await done;
  });

  it('never runs more than `concurrent` jobs and asks GitLab only with room', async () => {
    const { coordinator, executor, feed, finals } = setup({ jobs: 6, concurrent: 2, maxMachines: 4 });
    const done = coordinator.run();
    for (let finished = 0; finished < 6; ) {
      await until(() => executor.active > 0);
      if (executor.finishOne()) finished++;
    }
    await until(() => finals.size === 6);
    coordinator.stop();
    await done;
    expect(executor.peak).toBe(2);
    expect(Math.max(...feed.busyAtRequest)).toBeLessThan(2);
    expect([...finals.values()].every((o) => o.state === 'success')).toBe(true);
  });

  it('a job GitLab is canceling at acknowledgement is failed as canceled without taking a machine', async () => {
    const { coordinator, executor, provider, finals, traces } = setup({ jobs: 1, concurrent: 1, maxMachines: 1, ack: 'canceled' });
    const done = coordinator.run();
    await until(() => finals.size === 1);
    coordinator.stop();
    await done;
    expect(finals.get(1)).toMatchObject({ state: 'failed', reason: 'job_canceled' });
    expect(traces.get(1)).toContain('canceled before it started');
    expect(executor.peak).toBe(0);
    expect(provider.created).toBe(0);
  });

  it('a job dropped at acknowledgement gets no final state and no machine', async () => {
    const { coordinator, feed, provider, finals } = setup({ jobs: 1, concurrent: 1, maxMachines: 1, ack: 'drop' });
    const done = coordinator.run();
    await until(() => feed.busyAtRequest.length >= 2);
    coordinator.stop();
    await done;
    expect(finals.size).toBe(0);
    expect(provider.created).toBe(0);
  });

  it('starts the job on an idle machine while the acknowledgement is on its way', async () => {
    const { coordinator, executor, provider, finals, done, answer } = await onIdleMachineBeforeTheAnswer();
    answer('ok');
    executor.finishOne();
    await until(() => finals.size === 1);
    coordinator.stop();
    await done;
    expect(finals.get(1)).toEqual({ state: 'success' });
    expect(provider.created).toBeGreaterThanOrEqual(1);
  });

  it('a job GitLab is canceling at acknowledgement, already on an idle machine, is stopped and failed as canceled', async () => {
    const { coordinator, executor, provider, finals, done, answer } = await onIdleMachineBeforeTheAnswer();
    const machine = 'm-1';
    answer('canceled');
    await until(() => finals.size === 1);
    coordinator.stop();
    await done;
    expect(finals.get(1)).toMatchObject({ state: 'failed', reason: 'job_canceled' });
    expect(provider.terminated).toContain(machine); // stopped jobs never give their machine back to the pool
  });

  it('a job dropped at acknowledgement, already on an idle machine, is stopped and gets no final state', async () => {
    const { coordinator, executor, provider, finals, feed, done, answer } = await onIdleMachineBeforeTheAnswer();
    answer('drop');
    await until(() => executor.active === 0);
    const requests = feed.requests;
    await until(() => feed.requests > requests); // the slot is free again
    await until(() => provider.terminated.includes('m-1'));
    coordinator.stop();
    await done;
    expect(finals.size).toBe(0);
  });

  it('honours the executor cap below concurrent', async () => {
    const { coordinator, executor, finals } = setup({ jobs: 3, concurrent: 5, maxMachines: 1 });
    const done = coordinator.run();
    while (finals.size < 3) {
      await until(() => executor.active > 0);
      executor.finishOne();
      await new Promise((r) => setTimeout(r, 2));
    }
    coordinator.stop();
    await done;
    expect(executor.peak).toBe(1);
  });

  it('masks the job token in the trace and releases every machine', async () => {
    const { coordinator, executor, provider, traces, finals } = setup({ jobs: 1, concurrent: 1, maxMachines: 1 });
    const done = coordinator.run();
    await until(() => executor.active === 1);
    executor.finishOne();
    await until(() => finals.size === 1);
    coordinator.stop();
    await done;
    expect(traces.get(1)).toContain('running 1 with [MASKED]');
    expect(traces.get(1)).not.toContain('glcbt-job1secret');
    expect(provider.created).toBe(1);
    expect(provider.machines.size).toBe(0);
  });

  it('on stop lets running jobs finish, then cuts off stragglers as system failures after shutdownTimeout', async () => {
    const { coordinator, executor, finals, feed } = setup({ jobs: 2, concurrent: 2, maxMachines: 2, shutdownTimeoutMs: 50 });
    const done = coordinator.run();
    await until(() => executor.active === 2);
    coordinator.stop();
    const requestsAtStop = feed.requests;
    executor.finishOne();
    await done;
    expect(feed.requests).toBe(requestsAtStop);
    const outcomes = [...finals.values()];
    expect(outcomes.filter((o) => o.state === 'success')).toHaveLength(1);
    expect(outcomes.find((o) => o.state === 'failed')).toMatchObject({ reason: 'runner_system_failure' });
  });

  it('fails a job as a system failure when no machine can be had', async () => {
    const { coordinator, provider, finals, traces } = setup({ jobs: 1, concurrent: 1, maxMachines: 1 });
    provider.failNextCreates = 3;
    const done = coordinator.run();
    await until(() => finals.size === 1);
    coordinator.stop();
    await done;
    expect(finals.get(1)).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(traces.get(1)).toContain('no machine could be made ready after 3 attempts');
  });
});

describe('Coordinator polling pace', () => {
  /** Time moves only when the coordinator sleeps; requests take `requestMs` of it. */
  class PacedClock {
    t = 0;
    sleeps: number[] = [];
    now = () => this.t;
    sleep = (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        this.sleeps.push(ms);
        setImmediate(() => {
          this.t += ms;
          resolve();
        });
      });
  }

  async function pollTimes(requestMs: number, longPolled: boolean): Promise<{ starts: number[]; sleeps: number[] }> {
    const clock = new PacedClock();
    const starts: number[] = [];
    let coordinator!: Coordinator;
    const feed: JobFeed = {
      requestJob: async () => {
        starts.push(clock.t);
        clock.t += requestMs;
        if (starts.length === 5) coordinator.stop();
        return { kind: 'none', longPolled };
      },
    };
    const spoolDir = mkdtempSync(join(tmpdir(), 'fr-coord-'));
    dirs.push(spoolDir);
    coordinator = new Coordinator({
      concurrent: 1, checkIntervalMs: 3_000, shutdownTimeoutMs: 1_000, outputLimitBytes: 1 << 20, spoolDir,
      executors: [{ name: 'local', maxMachines: 1, executor: new ControlledExecutor(), fleet: new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock }) }],
      feed,
      openChannel: () => { throw new Error('no job expected'); },
      clock, logger: silentLogger, banner: () => '',
    });
    await coordinator.run();
    return { starts, sleeps: clock.sleeps.filter((ms) => ms !== 5_000 && ms !== 60_000) };
  }

  it('asks at most once per checkInterval even when every 204 says Gitlab-Ci-Builds-Polling: yes at once', async () => {
    const { starts } = await pollTimes(5, true);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBe(3_000);
  });

  it('asks again at once after a request GitLab held longer than checkInterval (long polling)', async () => {
    const { starts } = await pollTimes(50_000, true);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBe(50_000);
  });
});
