// Where the next task goes: capacity providers in the configured fallback order (FARGATE_SPOT, then
// FARGATE), each over the subnets starting from a rotating one (tasks spread across AZs). A subnet with no
// free address is passed over for every capacity provider; a capacity provider with no capacity in a subnet
// (an AZ) only there; both for `cooldownMs` (on the clock). `on-demand` leaves FARGATE_SPOT out.

import type { Clock } from '../../core/clock.js';
import type { FargateCapacityProvider } from '../../core/provider-config.js';

export interface FargateSlot {
  capacityProvider: FargateCapacityProvider;
  subnet: string;
}

export class FargatePlacement {
  private readonly benched = new Map<string, number>();
  private next = 0;

  constructor(
    private readonly o: { subnets: readonly string[]; strategy: readonly FargateCapacityProvider[]; cooldownMs: number; clock: Clock },
  ) {}

  /** Every slot to try for one task, best first. Empty when everything is benched. */
  candidates(onDemand: boolean): FargateSlot[] {
    const start = this.next++ % Math.max(1, this.o.subnets.length);
    const subnets = [...this.o.subnets.slice(start), ...this.o.subnets.slice(0, start)];
    const out: FargateSlot[] = [];
    for (const capacityProvider of this.o.strategy) {
      if (onDemand && capacityProvider === 'FARGATE_SPOT') continue;
      for (const subnet of subnets) {
        if (this.isBenched(`subnet:${subnet}`) || this.isBenched(`${capacityProvider}:${subnet}`)) continue;
        out.push({ capacityProvider, subnet });
      }
    }
    return out;
  }

  bench(slot: FargateSlot, scope: 'subnet' | 'provider'): void {
    this.benched.set(scope === 'subnet' ? `subnet:${slot.subnet}` : `${slot.capacityProvider}:${slot.subnet}`, this.o.clock.now() + this.o.cooldownMs);
  }

  private isBenched(key: string): boolean {
    const until = this.benched.get(key);
    if (until === undefined) return false;
    if (this.o.clock.now() < until) return true;
    this.benched.delete(key);
    return false;
  }
}
