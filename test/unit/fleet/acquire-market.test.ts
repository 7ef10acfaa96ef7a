// acquire({ market: 'on-demand' }): a new machine asked of the provider with that market; idle pool
// machines (possibly spot) are passed over, and at the cap the one idle longest makes room.
import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../../src/core/index.js';
import { DEFAULT_POOL } from '../../../src/core/pool-config.js';
import { ExecutorFleet } from '../../../src/fleet/executor-fleet.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { FakeClock } from '../executors/fakes.js';

const tags = { fleet: 'f', executor: 'e', coordinator: 'c' };
const never = new AbortController().signal;
const noProgress = () => undefined;

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function setup(idleCount: number, maxMachines: number) {
  const provider = new MemoryProvider();
  const fleet = new ExecutorFleet({ provider, tags, logger: silentLogger, clock: new FakeClock(), maxMachines, pool: { ...DEFAULT_POOL, idleCount, maxUseCount: 5 }, settleMs: 0 });
  return { provider, fleet };
}

describe('ExecutorFleet.acquire with a market', () => {
  it('asks the provider for an on-demand machine and passes over the idle pool', async () => {
    const { provider, fleet } = setup(1, 3);
    await fleet.reconcile();
    await settle();
    expect(fleet.counts().idle).toBe(1);
    const got = await fleet.acquire(never, noProgress, { market: 'on-demand' });
    expect(got.machine.id).toBe('m-2');
    expect(provider.createOptions).toEqual([{}, { market: 'on-demand' }]);
    expect(fleet.counts()).toMatchObject({ idle: 1, busy: 1 });
  });

  it('without a market, takes the idle machine and asks nothing of the provider', async () => {
    const { provider, fleet } = setup(1, 3);
    await fleet.reconcile();
    await settle();
    const got = await fleet.acquire(never, noProgress);
    expect(got.machine.id).toBe('m-1');
    expect(provider.createOptions[0]).toEqual({});
  });

  it('at the cap, removes the machine idle longest to make room, one at a time', async () => {
    const { provider, fleet } = setup(2, 2);
    await fleet.reconcile();
    await settle();
    expect(fleet.counts()).toMatchObject({ idle: 2 });
    const got = await fleet.acquire(never, noProgress, { market: 'on-demand' });
    expect(got.machine.id).toBe('m-3');
    // Both became idle at the same instant here: either may be the one that makes room, never both.
    expect(provider.terminated).toHaveLength(1);
    expect(['m-1', 'm-2']).toContain(provider.terminated[0]);
    expect(provider.createOptions.at(-1)).toEqual({ market: 'on-demand' });
    expect(provider.machines.size).toBe(2);
  });
});

describe('ExecutorFleet.acquire with the job\'s task', () => {
  it('asks the provider for a machine made from the task and never hands out an idle one', async () => {
    const { provider, fleet } = setup(1, 3);
    await fleet.reconcile();
    await settle();
    expect(fleet.counts().idle).toBe(1);
    const got = await fleet.acquire(never, noProgress, { task: { image: 'node:20', cpuUnits: 512 } });
    expect(got.machine.id).toBe('m-2');
    expect(provider.createOptions.at(-1)).toEqual({ task: { image: 'node:20', cpuUnits: 512 } });
  });
});
