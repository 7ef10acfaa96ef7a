// onShutdown: handoff in the job loop: running jobs are left on their machines for a successor (their
// trace flushed first, then the executor records its checkpoint), machines are not released, nothing is
// delivered; an executor that cannot hand a job over has it cut off instead. A job continued from its
// machine holds its slots, so no more jobs are asked for than there is room.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Executor, JobRunContext, MachineJobRecord, MachineJobs, Reattacher } from '../../../src/core/executor.js';
import type { ConnectionInfo } from '../../../src/core/machine.js';
import type { JobPayload } from '../../../src/core/job.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { JobOutcome } from '../../../src/core/outcome.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { Coordinator } from '../../../src/runner/coordinator.js';
import type { JobChannel, JobFeed, JobRequestOutcome } from '../../../src/runner/ports.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const job = (id: number): JobPayload =>
  jobPayload({ id, token: `glcbt-${id}-${Math.random().toString(36).slice(2)}`, job_info: { name: `j${id}`, project_id: 1 }, git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' }, runner_info: { timeout: 60 }, variables: [] });

/** Runs until aborted, handed off (then waits for the flush, as the shell style does), or released. */
class HandingExecutor implements Executor, Partial<Reattacher> {
  readonly style = 'shell' as const;
  active = 0;
  handedOff: number[] = [];
  flushedFirst = false;
  private finishers: Array<() => void> = [];
  constructor(private readonly reattachable: boolean) {
    if (reattachable) {
      this.inspect = async () => ({ kind: 'idle' });
      this.reattach = (m, ctx) => this.run(m, ctx);
      this.forget = async (_m, id) => void this.forgotten.push(id);
    }
  }
  inspect?: (m: ConnectionInfo) => Promise<MachineJobs>;
  reattach?: (m: ConnectionInfo, ctx: JobRunContext, r: MachineJobRecord) => Promise<JobOutcome>;
  forget?: (m: ConnectionInfo, jobId: number) => Promise<void>;
  /** Jobs whose records were removed from their machine (after delivery). */
  readonly forgotten: number[] = [];
  async run(_m: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome> {
    this.active++;
    try {
      const why = await new Promise<'done' | 'abort' | 'handoff'>((resolve) => {
        this.finishers.push(() => resolve('done'));
        ctx.abort.addEventListener('abort', () => resolve('abort'), { once: true });
        if (this.reattachable) ctx.handoff?.signal.addEventListener('abort', () => resolve('handoff'), { once: true });
      });
      if (why === 'handoff') {
        await ctx.handoff!.flushed();
        this.flushedFirst = true;
        this.handedOff.push(ctx.job.id);
        return { state: 'failed', reason: 'runner_system_failure', message: 'handed off' };
      }
      return why === 'done' ? { state: 'success' } : { state: 'failed', reason: 'runner_system_failure', message: String((ctx.abort.reason as Error)?.message) };
    } finally {
      this.active--;
    }
  }
  finishOne(): void {
    this.finishers.shift()?.();
  }
}

function setup(o: { reattachable: boolean; jobs: number; concurrent?: number; delivery?: Promise<'delivered' | 'pending'> }) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-handoff-'));
  dirs.push(spoolDir);
  const executor = new HandingExecutor(o.reattachable);
  const provider = new MemoryProvider();
  const finals = new Map<number, JobOutcome>();
  const handOffs: number[] = [];
  const queue = Array.from({ length: o.jobs }, (_, i) => job(i + 1));
  let requests = 0;
  const feed: JobFeed = {
    async requestJob(): Promise<JobRequestOutcome> {
      requests++;
      const j = queue.shift();
      return j ? { kind: 'job', job: j } : { kind: 'none', longPolled: false };
    },
  };
  const fleet = new ExecutorFleet({ provider, tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock: systemClock });
  const coordinator = new Coordinator({
    concurrent: o.concurrent ?? 4, checkIntervalMs: 1, shutdownTimeoutMs: 60_000, outputLimitBytes: 1 << 20, spoolDir,
    executors: [{ name: 'local', maxMachines: 4, executor, fleet }],
    feed,
    openChannel: (j): JobChannel => ({
      acknowledge: async () => 'ok',
      start: () => undefined,
      finish: async (outcome) => {
        const r = await (o.delivery ?? 'delivered');
        if (r === 'delivered') finals.set(j.id, outcome);
        return r;
      },
      abandon: () => undefined,
      storedBytes: () => 0,
      handOff: async () => {
        handOffs.push(j.id);
        return 0;
      },
    }),
    clock: systemClock, logger: silentLogger, banner: () => 'Running with fleetrunner\n',
    onShutdown: 'handoff', handoffTimeoutMs: 5_000,
  });
  return { coordinator, executor, provider, fleet, finals, handOffs, requests: () => requests };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('Coordinator with onShutdown: handoff', () => {
  it('leaves running jobs on their machines: trace flushed first, nothing delivered, no machine released', async () => {
    const s = setup({ reattachable: true, jobs: 2 });
    const done = s.coordinator.run();
    await until(() => s.executor.active === 2);
    s.coordinator.stop();
    await done;
    expect(s.coordinator.handedOff).toBe(true);
    expect(s.handOffs.sort()).toEqual([1, 2]);
    expect(s.executor.handedOff.sort()).toEqual([1, 2]);
    expect(s.executor.flushedFirst).toBe(true);
    expect(s.finals.size).toBe(0);
    expect(s.provider.terminated).toEqual([]);
    expect(s.provider.machines.size).toBe(2);
  });

  it('a second stop while handing off does not cut the jobs off', async () => {
    const s = setup({ reattachable: true, jobs: 1 });
    const done = s.coordinator.run();
    await until(() => s.executor.active === 1);
    s.coordinator.stop();
    s.coordinator.stop();
    await done;
    expect(s.executor.handedOff).toEqual([1]);
    expect(s.finals.size).toBe(0);
  });

  it('cuts off the jobs of an executor that cannot hand them over, and delivers their failure', async () => {
    const s = setup({ reattachable: false, jobs: 1 });
    const done = s.coordinator.run();
    await until(() => s.executor.active === 1);
    s.coordinator.stop();
    await done;
    expect(s.finals.get(1)).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
  });

  it('keeps a finished job\'s machine, with its records, until GitLab has the result; then removes the records and releases it', async () => {
    let deliver!: (r: 'delivered') => void;
    const s = setup({ reattachable: true, jobs: 1, delivery: new Promise((r) => (deliver = r)) });
    const done = s.coordinator.run();
    await until(() => s.executor.active === 1);
    s.executor.finishOne();
    await until(() => s.executor.active === 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.executor.forgotten).toEqual([]);
    expect(s.provider.terminated).toEqual([]);
    deliver('delivered');
    await until(() => s.provider.terminated.length === 1);
    expect(s.executor.forgotten).toEqual([1]);
    expect(s.finals.get(1)).toMatchObject({ state: 'success' });
    s.coordinator.stop();
    await done;
  });

  it('a result not delivered before the process hands off stays on its machine: records kept, machine left running', async () => {
    const s = setup({ reattachable: true, jobs: 1, delivery: Promise.resolve('pending') });
    const done = s.coordinator.run();
    await until(() => s.executor.active === 1);
    s.executor.finishOne();
    await until(() => s.executor.active === 0);
    await new Promise((r) => setTimeout(r, 20));
    s.coordinator.stop();
    await done;
    expect(s.executor.forgotten).toEqual([]);
    expect(s.provider.terminated).toEqual([]);
    expect(s.provider.machines.size).toBe(1);
  });

  it('a job continued from its machine holds its slots: with concurrent 1 nothing is asked for until it ends', async () => {
    const s = setup({ reattachable: true, jobs: 1, concurrent: 1 });
    const created = await s.provider.create(1, { fleet: 'f', executor: 'local', coordinator: 'c' });
    const machine = created.machines[0]!;
    const connection = await s.provider.waitReady(machine);
    s.fleet.adopt(machine, connection, 'busy');
    s.coordinator.continueJob('local', job(99), {
      machine,
      connection,
      record: { job: job(99), startedAt: Date.now(), checkpoint: { stage: 0, offset: 0, bytes: 0, crc: 0 } },
      reattacher: s.executor as unknown as Reattacher,
    });
    const done = s.coordinator.run();
    await until(() => s.executor.active === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(s.requests()).toBe(0);
    s.executor.finishOne();
    await until(() => s.finals.get(99)?.state === 'success');
    await until(() => s.requests() > 0);
    s.coordinator.stop();
    await done;
  });
});
