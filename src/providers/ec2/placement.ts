// Where the next instance goes. A pool is subnet × instance type × market. Each launch gets an ordered list
// of pools to try: spot before on-demand, instance types in the configured (preference) order, and subnets
// rotated per launch so consecutive machines land in different AZs. A pool that reported no capacity is
// benched for `cooldownMs` (a small circuit breaker: after the cooldown one launch tries it again, and a new
// failure benches it again). Pure apart from the injected clock.

import type { Clock } from '../../core/clock.js';
import type { CapacityScope } from './classify-error.js';

export type Market = 'spot' | 'on-demand';

export interface Pool {
  subnet: string;
  instanceType: string;
  market: Market;
}

export interface PlacementOptions {
  subnets: readonly string[];
  instanceTypes: readonly string[];
  spot: boolean;
  /** With spot: on-demand pools follow the spot pools. */
  onDemandFallback: boolean;
  cooldownMs: number;
  clock: Clock;
}

export interface BenchEntry {
  pool: Pool;
  until: number;
  reason: string;
}

export function poolKey(p: Pool): string {
  return `${p.subnet}/${p.instanceType}/${p.market}`;
}

export function describePool(p: Pool): string {
  return `${p.market} ${p.instanceType} in ${p.subnet}`;
}

export class Placement {
  private readonly bench = new Map<string, BenchEntry>();
  private cursor = 0;

  constructor(private readonly o: PlacementOptions) {
    if (o.subnets.length === 0) throw new Error('placement needs at least one subnet');
    if (o.instanceTypes.length === 0) throw new Error('placement needs at least one instance type');
  }

  get markets(): Market[] {
    return this.marketsFor(false);
  }

  /** `onDemandOnly`: a launch that must not be spot (a job run again after an interruption, or the spot
   *  circuit breaker open) tries the on-demand pools only, whatever `spot` and `onDemandFallback` say. */
  private marketsFor(onDemandOnly: boolean): Market[] {
    if (!this.o.spot || onDemandOnly) return ['on-demand'];
    return this.o.onDemandFallback ? ['spot', 'on-demand'] : ['spot'];
  }

  /** Every pool, in try order, for the next launch (advances the subnet rotation). Benched pools included. */
  nextOrder(onDemandOnly = false): Pool[] {
    const start = this.cursor++ % this.o.subnets.length;
    const subnets = [...this.o.subnets.slice(start), ...this.o.subnets.slice(0, start)];
    const order: Pool[] = [];
    for (const market of this.marketsFor(onDemandOnly)) {
      for (const instanceType of this.o.instanceTypes) {
        for (const subnet of subnets) order.push({ subnet, instanceType, market });
      }
    }
    return order;
  }

  /** The pools worth trying for the next launch: `nextOrder()` without the benched ones. */
  plan(onDemandOnly = false): Pool[] {
    return this.nextOrder(onDemandOnly).filter((p) => !this.isBenched(p));
  }

  isBenched(p: Pool): boolean {
    const b = this.bench.get(poolKey(p));
    if (!b) return false;
    if (b.until > this.o.clock.now()) return true;
    this.bench.delete(poolKey(p)); // cooled down: half-open, the next launch may try it
    return false;
  }

  /** Benches the pool, or every pool sharing its subnet or market, until the cooldown has passed. */
  benchPool(p: Pool, scope: CapacityScope, reason: string): Pool[] {
    const until = this.o.clock.now() + this.o.cooldownMs;
    const hit = this.allPools().filter(
      (q) =>
        (scope === 'pool' && poolKey(q) === poolKey(p)) ||
        (scope === 'subnet' && q.subnet === p.subnet) ||
        (scope === 'market' && q.market === p.market),
    );
    for (const q of hit) this.bench.set(poolKey(q), { pool: q, until, reason });
    return hit;
  }

  /** Benched pools right now, soonest back first. */
  benched(): BenchEntry[] {
    return [...this.bench.values()].filter((b) => this.isBenched(b.pool)).sort((a, b) => a.until - b.until);
  }

  private allPools(): Pool[] {
    const all: Pool[] = [];
    // On-demand pools too when spot runs without fallback: an on-demand-only launch may bench them.
    const markets: Market[] = this.o.spot ? ['spot', 'on-demand'] : ['on-demand'];
    for (const market of markets) {
      for (const instanceType of this.o.instanceTypes) {
        for (const subnet of this.o.subnets) all.push({ subnet, instanceType, market });
      }
    }
    return all;
  }
}
