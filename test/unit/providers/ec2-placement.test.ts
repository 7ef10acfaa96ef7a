import { describe, expect, it } from 'vitest';

import type { Clock } from '../../../src/core/index.js';
import { Placement, type PlacementOptions, type Pool } from '../../../src/providers/ec2/placement.js';

class StepClock implements Clock {
  t = 1_000_000;
  now = () => this.t;
  sleep = async (ms: number) => void (this.t += ms);
}

const A = 'subnet-a';
const B = 'subnet-b';
const C = 'subnet-c';

function placement(o: Partial<PlacementOptions> = {}) {
  const clock = new StepClock();
  const p = new Placement({ subnets: [A, B], instanceTypes: ['c6i.xlarge', 'm6i.xlarge'], spot: false, onDemandFallback: true, cooldownMs: 60_000, clock, ...o });
  return { p, clock };
}

const short = (pools: Pool[]) => pools.map((x) => `${x.subnet}/${x.instanceType}/${x.market}`);

describe('placement: order of pools', () => {
  it.each([
    { name: 'on-demand only', spot: false, fallback: true, markets: ['on-demand'] },
    { name: 'spot with fallback', spot: true, fallback: true, markets: ['spot', 'on-demand'] },
    { name: 'spot without fallback', spot: true, fallback: false, markets: ['spot'] },
  ])('$name: markets $markets, types in preference order, every subnet per type', ({ spot, fallback, markets }) => {
    const { p } = placement({ spot, onDemandFallback: fallback });
    const order = p.plan();
    expect([...new Set(order.map((x) => x.market))]).toEqual(markets);
    expect(order).toHaveLength(4 * markets.length);
    expect(short(order.slice(0, 4))).toEqual([`${A}/c6i.xlarge/${markets[0]}`, `${B}/c6i.xlarge/${markets[0]}`, `${A}/m6i.xlarge/${markets[0]}`, `${B}/m6i.xlarge/${markets[0]}`]);
  });

  it('rotates the first subnet per launch, so consecutive machines spread across AZs', () => {
    const { p } = placement({ subnets: [A, B, C], instanceTypes: ['c6i.xlarge'] });
    expect([1, 2, 3, 4].map(() => p.plan()[0]!.subnet)).toEqual([A, B, C, A]);
    expect(p.plan().map((x) => x.subnet)).toEqual([B, C, A]);
  });
});

describe('placement: the bench (circuit breaker)', () => {
  it.each([
    { scope: 'pool' as const, left: 3 },
    { scope: 'subnet' as const, left: 2 },
    { scope: 'market' as const, left: 0 },
  ])('a $scope-scoped capacity error leaves $left of 4 pools', ({ scope, left }) => {
    const { p } = placement();
    const failed = p.plan()[0]!;
    p.benchPool(failed, scope, 'InsufficientInstanceCapacity');
    expect(p.plan()).toHaveLength(left);
    expect(short(p.plan())).not.toContain(short([failed])[0]);
  });

  it('a benched pool comes back after the cooldown, and is benched again by the next failure', async () => {
    const { p, clock } = placement({ subnets: [A], instanceTypes: ['c6i.xlarge'] });
    const pool = p.plan()[0]!;
    p.benchPool(pool, 'pool', 'InsufficientInstanceCapacity');
    expect(p.plan()).toEqual([]);
    expect(p.benched()).toEqual([{ pool, until: clock.t + 60_000, reason: 'InsufficientInstanceCapacity' }]);
    await clock.sleep(59_999);
    expect(p.plan()).toEqual([]);
    await clock.sleep(1);
    expect(p.plan()).toEqual([pool]);
    expect(p.benched()).toEqual([]);
    p.benchPool(pool, 'pool', 'Unsupported');
    expect(p.isBenched(pool)).toBe(true);
  });

  it('benching a spot pool leaves the on-demand pool of the same subnet and type alone', () => {
    const { p } = placement({ spot: true, subnets: [A], instanceTypes: ['c6i.xlarge'] });
    const [spot, onDemand] = p.plan();
    p.benchPool(spot!, 'pool', 'InsufficientInstanceCapacity');
    expect(p.plan()).toEqual([onDemand]);
  });

  it('benched() lists soonest-back first', async () => {
    const { p, clock } = placement();
    const [x, y] = p.plan();
    p.benchPool(x!, 'pool', 'first');
    await clock.sleep(10);
    p.benchPool(y!, 'pool', 'second');
    expect(p.benched().map((b) => b.reason)).toEqual(['first', 'second']);
  });

  it('needs at least one subnet and one instance type', () => {
    expect(() => placement({ subnets: [] })).toThrow(/subnet/);
    expect(() => placement({ instanceTypes: [] })).toThrow(/instance type/);
  });
});

describe('placement: on-demand only (a job run again after an interruption, or the spot breaker open)', () => {
  it.each([
    { spot: true, fallback: true },
    { spot: true, fallback: false },
    { spot: false, fallback: true },
  ])('spot $spot, fallback $fallback: only on-demand pools', ({ spot, fallback }) => {
    const { p } = placement({ spot, onDemandFallback: fallback });
    const order = p.plan(true);
    expect(order).toHaveLength(4);
    expect(new Set(order.map((x) => x.market))).toEqual(new Set(['on-demand']));
  });

  it('benches on-demand pools even when spot runs without fallback', () => {
    const { p } = placement({ spot: true, onDemandFallback: false });
    const [first] = p.plan(true);
    p.benchPool(first!, 'pool', 'InsufficientInstanceCapacity');
    expect(p.plan(true)).toHaveLength(3);
    expect(p.plan()).toHaveLength(4);
  });
});
