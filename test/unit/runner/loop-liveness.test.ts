import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CoordinatorHealth } from '../../../src/cli/health.js';
import { silentLogger } from '../../../src/core/logger.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { Coordinator } from '../../../src/runner/coordinator.js';
import { DEFAULT_PAUSE_GRACE_MS, DEFAULT_REQUEST_STALE_MS, LoopLiveness, type LoopWait } from '../../../src/runner/loop-liveness.js';
import type { JobFeed, JobRequestOutcome } from '../../../src/runner/ports.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { settle, StepClock } from '../../helpers/step-clock.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('LoopLiveness', () => {
  it('is live before the first turn, and in every wait within its bound', () => {
    const clock = new StepClock();
    const l = new LoopLiveness(clock);
    expect(l.verdict()).toMatchObject({ live: true, reason: 'not_started' });
    l.entered({ kind: 'requesting' });
    clock.jump(DEFAULT_REQUEST_STALE_MS);
    expect(l.verdict()).toMatchObject({ live: true, reason: 'requesting', forMs: DEFAULT_REQUEST_STALE_MS });
    l.entered({ kind: 'pausing', ms: 3_000, why: 'no_job' });
    clock.jump(3_000 + DEFAULT_PAUSE_GRACE_MS);
    expect(l.verdict()).toMatchObject({ live: true, reason: 'pausing' });
  });

  it('a request that never returns and a pause that never ends are stuck', () => {
    const clock = new StepClock();
    const l = new LoopLiveness(clock);
    l.entered({ kind: 'requesting' });
    clock.jump(DEFAULT_REQUEST_STALE_MS + 1);
    expect(l.verdict()).toMatchObject({ live: false, reason: 'request_stuck' });
    l.entered({ kind: 'pausing', ms: 60_000, why: 'gitlab_paused' });
    clock.jump(60_000 + DEFAULT_PAUSE_GRACE_MS + 1);
    expect(l.verdict()).toMatchObject({ live: false, reason: 'pause_overrun' });
  });

  it('waiting for capacity and a stopped loop have no bound: jobs hold the slots, the stop has its own deadline', () => {
    const clock = new StepClock();
    const l = new LoopLiveness(clock);
    for (const wait of [{ kind: 'waiting_for_capacity' }, { kind: 'stopped' }] as LoopWait[]) {
      l.entered(wait);
      clock.jump(24 * 3_600_000);
      expect(l.verdict()).toMatchObject({ live: true, reason: wait.kind });
    }
  });
});

describe('LoopLiveness over several requesters', () => {
  it('one stuck requester makes the loop stuck however busy the others are', () => {
    const clock = new StepClock();
    const l = new LoopLiveness(clock);
    l.entered({ kind: 'requesting' }, 'deploy#1');
    clock.jump(DEFAULT_REQUEST_STALE_MS + 1);
    // The default runner keeps turning: its waits change all the time.
    l.entered({ kind: 'pausing', ms: 3_000, why: 'no_job' }, 'default#1');
    l.entered({ kind: 'requesting' }, 'default#1');
    expect(l.verdict()).toMatchObject({ live: false, reason: 'request_stuck', wait: { kind: 'requesting' } });
    // Once its request returns, the loop is live again and shows the latest wait.
    l.entered({ kind: 'pausing', ms: 3_000, why: 'no_job' }, 'deploy#1');
    expect(l.verdict()).toMatchObject({ live: true, reason: 'pausing' });
  });
});

/** A feed the test answers request by request. */
class HeldFeed implements JobFeed {
  private answer: ((o: JobRequestOutcome) => void) | undefined;
  requests = 0;
  requestJob(signal: AbortSignal): Promise<JobRequestOutcome> {
    this.requests++;
    return new Promise((resolve) => {
      this.answer = resolve;
      signal.addEventListener('abort', () => resolve({ kind: 'none', longPolled: true }), { once: true });
    });
  }
  reply(o: JobRequestOutcome): void {
    this.answer?.(o);
    this.answer = undefined;
  }
}

function coordinatorWithHealth(lease = { held: () => true }) {
  const clock = new StepClock();
  const spoolDir = mkdtempSync(join(tmpdir(), 'fr-live-'));
  dirs.push(spoolDir);
  const feed = new HeldFeed();
  const health = new CoordinatorHealth(clock);
  const coordinator = new Coordinator({
    concurrent: 1, checkIntervalMs: 3_000, shutdownTimeoutMs: 1_000, outputLimitBytes: 1 << 20, spoolDir, feed,
    // One executor with room (the loop asks only while one has), whose jobs never come in these tests.
    executors: [{ name: 'local', maxMachines: 1, executor: { style: 'shell', run: () => { throw new Error('no jobs here'); } }, fleet: new ExecutorFleet({ provider: new MemoryProvider(), tags: { fleet: 'f', executor: 'local', coordinator: 'c' }, logger: silentLogger, clock }) }],
    openChannel: () => { throw new Error('no jobs here'); },
    clock, logger: silentLogger, banner: () => '', onLoopWait: health.onLoopWait, lease,
  });
  health.holding(lease);
  return { clock, feed, health, coordinator };
}

const body = (a: { body: string }) => JSON.parse(a.body) as Record<string, unknown>;

describe('CoordinatorHealth with the job loop', () => {
  it('start-up phases are live but not ready; a running loop is both', async () => {
    const { clock, feed, health, coordinator } = coordinatorWithHealth();
    for (const phase of ['waiting_for_lease', 'reading_token', 'waiting_for_gitlab', 'taking_over'] as const) {
      health.enter(phase);
      clock.jump(3_600_000);
      expect(health.liveness().status).toBe(200);
      expect(health.readiness()).toMatchObject({ status: 503 });
      expect(body(health.readiness())).toMatchObject({ status: 'fail', phase });
    }
    health.enter('running');
    const done = coordinator.run();
    await settle();
    expect(feed.requests).toBe(1);
    expect(health.readiness().status).toBe(200);
    expect(body(health.liveness())).toMatchObject({ status: 'ok', loop: 'requesting' });
    feed.reply({ kind: 'none', longPolled: false });
    await settle();
    expect(body(health.readiness())).toMatchObject({ status: 'ok', loop: 'pausing' });
    health.enter('stopping');
    coordinator.stop();
    await done;
    expect(health.liveness().status).toBe(200);
    expect(body(health.readiness())).toMatchObject({ phase: 'stopping' });
  });

  it('a job request that never returns fails liveness, so the platform replaces the task', async () => {
    const { clock, feed, health, coordinator } = coordinatorWithHealth();
    health.enter('running');
    const done = coordinator.run();
    await settle();
    clock.jump(DEFAULT_REQUEST_STALE_MS + 1);
    expect(health.liveness().status).toBe(503);
    expect(body(health.liveness())).toMatchObject({ loop: 'request_stuck' });
    expect(body(health.readiness())).toMatchObject({ reason: 'request_stuck' });
    feed.reply({ kind: 'none', longPolled: true });
    coordinator.stop();
    await done;
  });

  it('is not ready while GitLab refuses the token for now, or once the lease is lost', async () => {
    let held = true;
    const { feed, health, coordinator } = coordinatorWithHealth({ held: () => held });
    health.enter('running');
    const done = coordinator.run();
    await settle();
    feed.reply({ kind: 'paused', retryInMs: 600_000, reason: 'three 403s in a row' });
    await settle();
    expect(health.liveness().status).toBe(200);
    expect(body(health.readiness())).toMatchObject({ status: 'fail', reason: 'gitlab_refusing_token' });
    held = false;
    expect(body(health.readiness())).toMatchObject({ status: 'fail', reason: 'lease_not_held' });
    coordinator.stop();
    await done;
  });
});
