// The job loop and the fleet's lease: no job request while the lease is not held, and standing down on
// loss stops requests at once while running jobs finish (they are never cut off by it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/core/clock.js';
import type { Executor, JobRunContext } from '../../../src/core/executor.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { JobOutcome } from '../../../src/core/outcome.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { Coordinator } from '../../../src/runner/coordinator.js';
import type { JobChannel, JobFeed } from '../../../src/runner/ports.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

const job = (id: number) =>
  jobPayload({
    id, token: `glcbt-job${id}secret`, job_info: { name: `j${id}`, project_id: 1 },
    git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' }, runner_info: { timeout: 60 }, variables: [],
  });

/** Jobs end when the test says so; an abort (cut-off) fails them. */
class HeldExecutor implements Executor {
  readonly style = 'shell' as const;
  active = 0;
  private releases: Array<() => void> = [];
  async run(_m: unknown, ctx: JobRunContext): Promise<JobOutcome> {
    this.active++;
    try {
      await new Promise<void>((resolve, reject) => {
        this.releases.push(resolve);
        ctx.abort.addEventListener('abort', () => reject(ctx.abort.reason), { once: true });
      });
      return { state: 'success' };
    } catch {
      return { state: 'failed', reason: 'runner_system_failure' };
    } finally {
      this.active--;
    }
  }
  finishAll(): void {
    this.releases.splice(0).forEach((r) => r());
  }
}

function setup(lease: { held(): boolean }, jobs = 10) {
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-coord-lease-'));
  dirs.push(spoolDir);
  const executor = new HeldExecutor();
  const queue = Array.from({ length: jobs }, (_, i) => job(i + 1));
  let requests = 0;
  const feed: JobFeed = {
    requestJob: async () => {
      requests++;
      const j = queue.shift();
      return j ? { kind: 'job', job: j } : { kind: 'none', longPolled: false };
    },
  };
  const finals = new Map<number, JobOutcome>();
  const coordinator = new Coordinator({
    concurrent: 2, checkIntervalMs: 1, shutdownTimeoutMs: 60_000, outputLimitBytes: 1 << 20, spoolDir,
    executors: [{ name: 'local', maxMachines: 2, executor, fleet: new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock: systemClock, retryDelayMs: 1 }) }],
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
    clock: systemClock, logger: silentLogger, banner: () => '',
    lease,
  });
  return { coordinator, executor, finals, requests: () => requests };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  expect(cond()).toBe(true);
};

describe('Coordinator and the lease', () => {
  it('sends no job request while the lease is not held, and stands down', async () => {
    const { coordinator, requests } = setup({ held: () => false });
    await coordinator.run();
    expect(requests()).toBe(0);
  });

  it('standDown stops requests at once; running jobs finish and are not cut off, and a later stop() is the graceful first one', async () => {
    let isHeld = true;
    const { coordinator, executor, finals, requests } = setup({ held: () => isHeld });
    const done = coordinator.run();
    await until(() => executor.active === 2);
    isHeld = false;
    expect(coordinator.standDown('the lease was lost')).toBe(true);
    expect(coordinator.standDown('again')).toBe(false);
    const asked = requests();
    coordinator.stop(); // SIGTERM after the loss: still graceful, jobs keep running
    await new Promise((r) => setTimeout(r, 20));
    expect(executor.active).toBe(2);
    executor.finishAll();
    await done;
    expect(requests()).toBe(asked);
    expect([...finals.values()]).toEqual([{ state: 'success' }, { state: 'success' }]);
  });

  it('a lease that lapses between two requests stops the loop before the next one', async () => {
    let calls = 0;
    const { coordinator, executor, finals, requests } = setup({ held: () => ++calls <= 1 }, 3);
    const done = coordinator.run();
    await until(() => executor.active === 1);
    expect(requests()).toBe(1);
    executor.finishAll();
    await done;
    expect(finals.size).toBe(1);
    expect(requests()).toBe(1);
  });
});
