// The fleet under a seeded random mix of everything that happens to it (jobs asking and giving back,
// jobs giving up, reconciles, dropped connections, failed creates and terminates, garbage collection, time
// passing), checking after every step what must always hold: never more machines than maxMachines, every
// machine the provider has is one the fleet counts, the jobs hold exactly the busy machines; and at the
// end a shutdown leaves nothing. A transition the table refuses would surface as an unhandled rejection.
import { describe, expect, it } from 'vitest';

import { silentLogger, type ConnectionInfo, type MachineWarmer } from '../../../src/core/index.js';
import { DEFAULT_POOL } from '../../../src/core/pool-config.js';
import { ExecutorFleet, type AcquiredMachine, type RemovalReason } from '../../../src/fleet/executor-fleet.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { settle, StepClock } from '../../helpers/step-clock.js';

class Warmer implements MachineWarmer {
  lost = new Map<string, (e: Error) => void>();
  async warm(m: ConnectionInfo, onLost: (e: Error) => void): Promise<void> {
    this.lost.set(m.host, onLost);
  }
  cool(m: ConnectionInfo): void {
    this.lost.delete(m.host);
  }
}

/** A small deterministic generator (LCG): the same seed, the same run. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const MAX = 3;

describe.each([1, 2, 3, 4, 5])('ExecutorFleet invariants, seed %i', (seed) => {
  it('holds through 400 random steps and leaves nothing after releaseAll', async () => {
    const rnd = random(seed);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const clock = new StepClock();
    const provider = new MemoryProvider();
    provider.now = () => clock.now();
    const terminate = provider.terminate.bind(provider);
    let failTerminates = false;
    provider.terminate = async (ids) => (failTerminates ? { errors: [new Error('throttled')] } : terminate(ids));
    const warmer = new Warmer();
    const fleet = new ExecutorFleet({
      provider,
      tags: { fleet: 'f', executor: 'e', coordinator: 'c' },
      logger: silentLogger,
      clock,
      maxMachines: MAX,
      pool: { ...DEFAULT_POOL, idleCount: 2, maxUseCount: 2, idleTimeMs: 60_000 },
      warmer,
      settleMs: 0,
      retryDelayMs: 1_000,
      bootTimeoutMs: 120_000,
    });
    const held: AcquiredMachine[] = [];
    const waiting = new Set<AbortController>();
    const reasons: RemovalReason[] = ['interrupted', 'unclean'];

    const check = (step: string) => {
      const c = fleet.counts();
      const counted = c.booting + c.idle + c.busy + c.removing;
      expect(provider.machines.size, step).toBeLessThanOrEqual(MAX);
      expect(counted, step).toBeLessThanOrEqual(MAX);
      expect(provider.machines.size, step).toBeLessThanOrEqual(counted);
      expect(c.busy, step).toBe(held.length);
      expect(fleet.machinesInUse, step).toBe(held.length);
    };

    for (let i = 0; i < 400; i++) {
      const action = pick(['acquire', 'acquire', 'release', 'release', 'abort', 'reconcile', 'lose', 'failCreate', 'terminates', 'gc', 'time'] as const);
      switch (action) {
        case 'acquire': {
          const ctl = new AbortController();
          waiting.add(ctl);
          fleet.acquire(ctl.signal, () => undefined).then(
            (m) => {
              waiting.delete(ctl);
              held.push(m);
            },
            () => waiting.delete(ctl),
          );
          break;
        }
        case 'release': {
          const m = held.splice(Math.floor(rnd() * held.length), 1)[0];
          if (m) void fleet.release(m.machine, rnd() < 0.2 ? { reusable: false, reason: pick(reasons) } : { reusable: rnd() < 0.7 });
          break;
        }
        case 'abort':
          if (waiting.size) pick([...waiting]).abort(new Error('the job was cancelled'));
          break;
        case 'reconcile':
          void fleet.reconcile();
          break;
        case 'lose': {
          const hosts = [...warmer.lost.keys()];
          if (hosts.length) warmer.lost.get(pick(hosts))!(new Error('connection reset'));
          break;
        }
        case 'failCreate':
          provider.failNextCreates++;
          break;
        case 'terminates':
          failTerminates = rnd() < 0.3; // failing terminates now and then, for a while
          break;
        case 'gc':
          void fleet.collectGarbage(10 * 60_000);
          break;
        case 'time':
          await clock.advance(Math.floor(rnd() * 90_000));
          break;
      }
      await settle(5);
      check(`step ${i}: ${action}`);
    }

    failTerminates = false;
    for (const ctl of waiting) ctl.abort(new Error('stopping'));
    for (const m of held.splice(0)) await fleet.release(m.machine, { reusable: true });
    await fleet.stopPool();
    await fleet.collectGarbage(0);
    await fleet.releaseAll();
    await settle();
    expect(provider.machines.size).toBe(0);
    expect(fleet.counts()).toEqual({ booting: 0, idle: 0, busy: 0, removing: 0 });
  });
});
