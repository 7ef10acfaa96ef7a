// The fleet of one executor with its idle pool: in-memory provider, stepped clock, a warmer that records.
import { describe, expect, it } from 'vitest';

import { silentLogger, type ConnectionInfo, type MachineWarmer } from '../../../src/core/index.js';
import { DEFAULT_POOL, type PoolConfig } from '../../../src/core/pool-config.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { FakeClock } from '../executors/fakes.js';

const tags = { fleet: 'f', executor: 'e', coordinator: 'c' };

class RecordingWarmer implements MachineWarmer {
  warmed: string[] = [];
  cooled: string[] = [];
  lost = new Map<string, (e: Error) => void>();
  failFor = new Set<string>();
  async warm(m: ConnectionInfo, onLost: (e: Error) => void): Promise<void> {
    if (this.failFor.has(m.host)) throw new Error(`ssh: ${m.host} refused`);
    this.warmed.push(m.host);
    this.lost.set(m.host, onLost);
  }
  cool(m: ConnectionInfo): void {
    this.cooled.push(m.host);
  }
}

/** Lets queued microtasks and immediate callbacks (background boots, kicks) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function setup(pool: Partial<PoolConfig>, maxMachines = 4) {
  const provider = new MemoryProvider();
  const clock = new FakeClock();
  const warmer = new RecordingWarmer();
  const fleet = new ExecutorFleet({ provider, tags, logger: silentLogger, clock, maxMachines, pool: { ...DEFAULT_POOL, ...pool }, warmer, settleMs: 0 });
  return { provider, clock, warmer, fleet };
}

/** Holds every machine in waitReady until the returned function is called. */
function holdWaitReady(provider: MemoryProvider): () => void {
  let ready!: () => void;
  const gate = new Promise<void>((r) => (ready = r));
  const inner = provider.waitReady.bind(provider);
  provider.waitReady = async (m) => {
    await gate;
    return inner(m);
  };
  return ready;
}

const never = new AbortController().signal;
const noProgress = () => undefined;

describe('ExecutorFleet without a pool', () => {
  it('creates a machine per job and removes it after', async () => {
    const { provider, fleet, warmer } = setup({});
    await fleet.reconcile();
    await settle();
    expect(provider.created).toBe(0);
    const got = await fleet.acquire(never, noProgress);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 0, busy: 1, removing: 0 });
    await fleet.release(got.machine, { reusable: true });
    expect(provider.terminated).toEqual([got.machine.id]);
    expect(warmer.warmed).toEqual([]);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 0, busy: 0, removing: 0 });
  });
});

describe('ExecutorFleet before GitLab confirmed the job', () => {
  function unconfirmed() {
    let confirm!: () => void;
    const confirmed = new Promise<void>((r) => (confirm = r));
    return { confirmed, confirm };
  }

  it('hands out an idle machine at once', async () => {
    const { fleet } = setup({ idleCount: 1 });
    await fleet.reconcile();
    await settle();
    const got = await fleet.acquire(never, noProgress, { confirmed: unconfirmed().confirmed });
    expect(got.machine.id).toBe('m-1');
  });

  it('launches nothing until GitLab confirmed the job, then launches its machine', async () => {
    const { provider, fleet } = setup({});
    const c = unconfirmed();
    let got: string | undefined;
    const p = fleet.acquire(never, noProgress, { confirmed: c.confirmed }).then((a) => (got = a.machine.id));
    await settle();
    expect(provider.created).toBe(0);
    expect(got).toBeUndefined();
    c.confirm();
    await p;
    expect(provider.created).toBe(1);
    expect(got).toBe('m-1');
  });

  it('a job stopped before the confirmation launches nothing', async () => {
    const { provider, fleet } = setup({});
    const stop = new AbortController();
    const p = fleet.acquire(stop.signal, noProgress, { confirmed: unconfirmed().confirmed });
    await settle();
    stop.abort(new Error('canceled before it started'));
    await expect(p).rejects.toThrow('canceled before it started');
    expect(provider.created).toBe(0);
  });
});

describe('ExecutorFleet idle pool', () => {
  it('boots idleCount machines, warms them, hands one out without creating, then refills', async () => {
    const { provider, fleet, warmer } = setup({ idleCount: 2 });
    await fleet.reconcile();
    await settle();
    expect(fleet.counts()).toEqual({ booting: 0, idle: 2, busy: 0, removing: 0 });
    expect(warmer.warmed).toEqual(['m-1', 'm-2']);

    const got = await fleet.acquire(never, noProgress);
    expect(['m-1', 'm-2']).toContain(got.machine.id); // an idle one, not a new one
    await settle();
    expect(provider.created).toBe(3);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 2, busy: 1, removing: 0 });

    await fleet.release(got.machine, { reusable: true }); // maxUseCount 1: removed
    expect(provider.terminated).toEqual([got.machine.id]);
    expect(warmer.cooled).toContain(got.machine.id);
  });

  it('never goes over maxMachines, counting busy and booting machines', async () => {
    const { provider, fleet } = setup({ idleCount: 3 }, 3);
    await fleet.reconcile();
    await settle();
    const a = await fleet.acquire(never, noProgress);
    const b = await fleet.acquire(never, noProgress);
    await settle();
    expect(provider.machines.size).toBe(3);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 1, busy: 2, removing: 0 });
    await fleet.release(a.machine);
    await fleet.release(b.machine);
    await settle();
    expect(fleet.counts()).toEqual({ booting: 0, idle: 3, busy: 0, removing: 0 });
    expect(provider.machines.size).toBe(3);
  });

  it('a job at the cap waits for the pool machine that is booting instead of creating another', async () => {
    const { provider, fleet } = setup({ idleCount: 1 }, 1);
    const ready = holdWaitReady(provider);
    await fleet.reconcile();
    await settle();
    expect(fleet.counts().booting).toBe(1);
    let done = false;
    const pending = fleet.acquire(never, noProgress).then((x) => {
      done = true;
      return x;
    });
    await settle();
    expect(done).toBe(false);
    expect(provider.created).toBe(1);
    ready();
    const got = await pending;
    expect(got.machine.id).toBe('m-1');
    expect(provider.created).toBe(1);
  });

  it('reuses a machine up to maxUseCount, the most recently idle first, and never after a job that left it unhealthy', async () => {
    const { provider, fleet, warmer, clock } = setup({ idleCount: 1, maxUseCount: 2 });
    await fleet.reconcile();
    await settle();
    const first = await fleet.acquire(never, noProgress);
    clock.advance(1_000);
    await fleet.release(first.machine, { reusable: true });
    await settle();
    expect(provider.terminated).toEqual([]);
    expect(warmer.warmed.filter((h) => h === first.machine.id)).toHaveLength(2); // warmed again on return
    // m-1 became idle last (after its job): it is handed out again, now its second and last use.
    const second = await fleet.acquire(never, noProgress);
    expect(second.machine.id).toBe(first.machine.id);
    await fleet.release(second.machine, { reusable: true });
    expect(provider.terminated).toEqual([first.machine.id]);

    await settle();
    const third = await fleet.acquire(never, noProgress);
    await fleet.release(third.machine, { reusable: false });
    expect(provider.terminated).toContain(third.machine.id);
  });

  it('removes idle machines beyond the target once they were idle for idleTime', async () => {
    const { provider, fleet, clock } = setup({ idleCount: 0, maxUseCount: 5, idleTimeMs: 10 * 60_000 });
    const got = await fleet.acquire(never, noProgress);
    await fleet.release(got.machine, { reusable: true });
    await settle();
    expect(fleet.counts().idle).toBe(1);
    clock.advance(9 * 60_000);
    await fleet.reconcile();
    await settle();
    expect(provider.terminated).toEqual([]);
    clock.advance(60_000);
    await fleet.reconcile();
    await settle();
    expect(provider.terminated).toEqual([got.machine.id]);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 0, busy: 0, removing: 0 });
  });

  it('replaces an idle machine whose held connection dropped', async () => {
    const { provider, fleet, warmer } = setup({ idleCount: 1 });
    await fleet.reconcile();
    await settle();
    warmer.lost.get('m-1')!(new Error('connection reset'));
    await settle();
    expect(provider.terminated).toEqual(['m-1']);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 1, busy: 0, removing: 0 });
    expect(provider.machines.has('m-2')).toBe(true);
  });

  it('a machine the executor cannot connect to never joins the pool', async () => {
    const { provider, fleet, warmer } = setup({ idleCount: 1 });
    warmer.failFor.add('m-1');
    await fleet.reconcile();
    await settle();
    expect(provider.terminated).toEqual(['m-1']);
    expect(fleet.counts().idle).toBe(0);
  });

  it('backs off after a failed pool creation instead of hammering the provider', async () => {
    const { provider, fleet, clock } = setup({ idleCount: 1 });
    provider.failNextCreates = 1;
    await fleet.reconcile();
    await settle();
    expect(fleet.counts().idle).toBe(0);
    await fleet.reconcile();
    await settle();
    expect(provider.created).toBe(0); // still backing off
    clock.advance(5_000);
    await fleet.reconcile();
    await settle();
    expect(fleet.counts().idle).toBe(1);
  });

  it('stopPool removes idle machines, stops refilling, and removes a machine that finishes booting after', async () => {
    const { provider, fleet } = setup({ idleCount: 2 });
    await fleet.reconcile();
    await settle();
    const busy = await fleet.acquire(never, noProgress); // a refill starts booting
    await fleet.stopPool();
    await settle();
    expect(provider.machines.size).toBe(1);
    expect([...provider.machines.keys()]).toEqual([busy.machine.id]);
    await fleet.reconcile();
    await settle();
    expect(provider.machines.size).toBe(1);
    await fleet.release(busy.machine, { reusable: true }); // no way back into a stopped pool
    expect(provider.machines.size).toBe(0);
  });

  it('coalesces the reconciles of a burst of changes into one, after settleMs', async () => {
    const provider = new MemoryProvider();
    const clock = new FakeClock();
    const fleet = new ExecutorFleet({ provider, tags, logger: silentLogger, clock, maxMachines: 6, pool: { ...DEFAULT_POOL, idleCount: 3 }, warmer: new RecordingWarmer(), settleMs: 250 });
    await fleet.reconcile();
    await settle();
    expect(provider.created).toBe(3);
    await fleet.acquire(never, noProgress);
    await fleet.acquire(never, noProgress);
    await settle();
    expect(provider.created).toBe(3); // nothing yet: the refill waits for the burst to settle
    clock.advance(250);
    await settle();
    expect(provider.created).toBe(5);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 3, busy: 2, removing: 0 });
  });

  it('a machine whose terminate failed still counts against maxMachines until garbage collection removes it', async () => {
    const { provider, fleet } = setup({}, 1);
    const terminate = provider.terminate.bind(provider);
    provider.terminate = async () => ({ errors: [new Error('throttled')] });
    const first = await fleet.acquire(never, noProgress);
    await fleet.release(first.machine);
    expect(fleet.counts()).toMatchObject({ busy: 0, removing: 1 });
    const ctl = new AbortController();
    let second: Promise<unknown> | undefined = fleet.acquire(ctl.signal, noProgress);
    await settle();
    expect(provider.created).toBe(1); // at the cap: it waits instead of launching a second machine
    provider.terminate = terminate;
    await fleet.collectGarbage(10 * 60_000); // a failed terminate is retried whatever the machine's age
    await second;
    second = undefined;
    expect(provider.created).toBe(2);
    expect(provider.machines.size).toBe(1);
  });

  it('a provider whose create throws fails that attempt and wakes a job waiting at the cap', async () => {
    const provider = new MemoryProvider();
    const fleet = new ExecutorFleet({ provider, tags, logger: silentLogger, clock: new FakeClock(), maxMachines: 1, acquireAttempts: 1, settleMs: 0 });
    let calls = 0;
    const create = provider.create.bind(provider);
    provider.create = async (n, t) => {
      if (++calls === 1) {
        await new Promise((r) => setImmediate(r));
        throw new Error('API exploded');
      }
      return create(n, t);
    };
    const a = fleet.acquire(never, noProgress);
    const b = fleet.acquire(never, noProgress); // at the cap while a's creation is in flight: it waits
    await expect(a).rejects.toThrow(/API exploded/);
    expect((await b).machine.id).toBe('m-1');
  });

  it('stopPool hands a pool machine that is still booting to a job waiting for it', async () => {
    const { provider, fleet } = setup({ idleCount: 1 }, 1);
    const ready = holdWaitReady(provider);
    await fleet.reconcile();
    await settle();
    const waiting = fleet.acquire(never, noProgress);
    await settle();
    await fleet.stopPool();
    ready();
    const got = await waiting;
    expect(got.machine.id).toBe('m-1');
    expect(provider.created).toBe(1);
  });

  it('releaseAll terminates what it tracks even when listing fails, after boots in flight returned', async () => {
    const { provider, fleet } = setup({ idleCount: 2 });
    await fleet.reconcile();
    await settle();
    const busy = await fleet.acquire(never, noProgress);
    provider.list = async () => {
      throw new Error('DescribeInstances unavailable');
    };
    await fleet.releaseAll();
    expect(provider.machines.size).toBe(0);
    expect(provider.terminated).toContain(busy.machine.id);
  });

  it('garbage collection leaves pool machines alone and retries a failed terminate', async () => {
    const { provider, fleet } = setup({ idleCount: 1 });
    await fleet.reconcile();
    await settle();
    expect(await fleet.collectGarbage()).toEqual([]);
    const got = await fleet.acquire(never, noProgress);
    const terminate = provider.terminate.bind(provider);
    provider.terminate = async () => ({ errors: [new Error('throttled')] });
    await fleet.release(got.machine);
    provider.terminate = terminate;
    await settle();
    expect(await fleet.collectGarbage()).toEqual([got.machine.id]);
    expect(provider.machines.has(got.machine.id)).toBe(false);
  });
});
