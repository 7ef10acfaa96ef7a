// The acknowledgement (PUT running) is on its way while the job starts on its machine (job-run.ts): whatever
// GitLab answers, or fails to, the job's run on its machine is stopped and waited for before its result is
// reported, and a job canceled as it was handed out fails as canceled wherever it was waiting.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Executor, JobRunContext } from '../../../src/core/executor.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { JobOutcome } from '../../../src/core/outcome.js';
import { DEFAULT_POOL } from '../../../src/core/pool-config.js';
import type { TraceLog } from '../../../src/core/trace.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import type { JobJournal } from '../../../src/runner/job-journal.js';
import { JobRun, type JobRunOptions } from '../../../src/runner/job-run.js';
import type { JobChannel } from '../../../src/runner/ports.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

type Ack = 'ok' | 'drop' | 'canceled';

/** Runs until aborted, then takes a while to stop (as a real machine does). */
class SlowStopExecutor implements Executor {
  readonly style = 'shell' as const;
  running = false;
  ended = false;
  async run(_m: unknown, ctx: JobRunContext): Promise<JobOutcome> {
    this.running = true;
    await new Promise<void>((resolve) => ctx.abort.addEventListener('abort', () => resolve(), { once: true }));
    await new Promise((r) => setTimeout(r, 30));
    this.running = false;
    this.ended = true;
    return { state: 'failed', reason: 'job_canceled', message: 'canceled' };
  }
}

async function setup(o: { ack: () => Promise<Ack>; idle?: boolean; journal?: JobJournal; waitForSlot?: JobRunOptions['waitForSlot'] }) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-ack-'));
  dirs.push(spoolDir);
  const provider = new MemoryProvider();
  const fleet = new ExecutorFleet({ provider, tags: { fleet: 'f', executor: 'e', coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1, maxMachines: 2, ...(o.idle && { pool: { ...DEFAULT_POOL, idleCount: 1 } }) });
  if (o.idle) {
    await fleet.reconcile();
    await until(() => fleet.counts().idle === 1);
  }
  const executor = new SlowStopExecutor();
  const finals: Array<{ outcome: JobOutcome; executorEnded: boolean; trace: string }> = [];
  const open = (_job: unknown, log: TraceLog): JobChannel => ({
    acknowledge: o.ack,
    start: () => undefined,
    finish: async (outcome) => {
      finals.push({ outcome, executorEnded: !executor.running, trace: Buffer.from(await log.read(0, log.size)).toString() });
      return 'delivered';
    },
    abandon: () => undefined,
  });
  const run = new JobRun({
    job: jobPayload({ id: 7, token: 'job-token-7' }),
    runtime: { name: 'e', executor, fleet },
    openChannel: open,
    spoolDir,
    outputLimitBytes: 1 << 20,
    logger: silentLogger,
    clock: systemClock,
    banner: 'banner\n',
    extraSecrets: [],
    ...(o.journal && { journal: o.journal }),
    ...(o.waitForSlot && { waitForSlot: o.waitForSlot }),
  });
  return { run, executor, fleet, provider, finals };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('JobRun and the acknowledgement', () => {
  it('an acknowledgement that fails while the job is on its machine: the run is stopped and waited for, then reported', async () => {
    let fail!: (e: Error) => void;
    const s = await setup({ idle: true, ack: () => new Promise<Ack>((_, reject) => (fail = reject)) });
    const done = s.run.run();
    await until(() => s.executor.running);
    fail(new Error('socket hang up'));
    const outcome = await done;
    expect(outcome).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(s.finals).toHaveLength(1);
    expect(s.finals[0]!.executorEnded).toBe(true);
    expect(s.fleet.counts().busy).toBe(0);
  });

  it('a journal that cannot record the job: the run is stopped and waited for, then reported', async () => {
    let answer!: (a: Ack) => void;
    const journal = { record: () => { throw new Error('ENOSPC: no space left on device'); }, remove: () => undefined } as unknown as JobJournal;
    const s = await setup({ idle: true, journal, ack: () => new Promise<Ack>((r) => (answer = r)) });
    const done = s.run.run();
    await until(() => s.executor.running);
    answer('ok');
    expect(await done).toMatchObject({ state: 'failed', reason: 'runner_system_failure' });
    expect(s.finals[0]!.executorEnded).toBe(true);
    expect(s.fleet.counts().busy).toBe(0);
  });

  it('canceled at the acknowledgement while waiting for an executor slot: failed as canceled, nothing ran', async () => {
    let answer!: (a: Ack) => void;
    const waitForSlot: JobRunOptions['waitForSlot'] = (signal) =>
      new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    const s = await setup({ waitForSlot, ack: () => new Promise<Ack>((r) => (answer = r)) });
    const done = s.run.run();
    await new Promise((r) => setTimeout(r, 10));
    answer('canceled');
    expect(await done).toEqual({ state: 'failed', reason: 'job_canceled', message: 'canceled' });
    expect(s.finals[0]!.trace).toContain('canceled before it started');
    expect(s.executor.ended).toBe(false);
    expect(s.provider.created).toBe(0);
  });
});
