// Handing machines to jobs and taking them back: pure decisions over the machine table.

import type { RemovalReason } from './machine-phases.js';
import type { MachineRecord } from './machine-table.js';

export type HandoutDecision =
  | { kind: 'take'; id: string } // an idle machine
  | { kind: 'create' } // below the cap: a new one
  | { kind: 'make_room'; id: string } // at the cap, for a job that cannot use idle machines: remove one
  | { kind: 'wait' }; // at the cap: the next machine that becomes idle, or leaves, is the job's

export interface HandoutInput {
  records: readonly MachineRecord[];
  /** Machines in the table and creations in flight. */
  total: number;
  maxMachines: number;
  /** The job asked for a market the idle pool does not promise (on-demand after a spot interruption). */
  market?: 'on-demand';
  /** The job's machine is made from the job (a Fargate task from its image): never an idle one. */
  fresh?: boolean;
}

/**
 * Idle machines go last in, first out: the machine that became idle last has the warmest caches (Docker
 * layers, the local cache), and those left waiting are the ones idle longest, which idleTime removes first.
 * A job that asks for a market gets a new machine, since idle ones may be spot; at the cap it frees a slot
 * by removing the longest idle machine.
 */
export function decideHandout(i: HandoutInput): HandoutDecision {
  const idle = i.records.filter((r) => r.phase === 'idle' && r.connection).sort((a, b) => b.since - a.since || (a.machine.id < b.machine.id ? -1 : 1));
  if (i.market === undefined && !i.fresh && idle[0]) return { kind: 'take', id: idle[0].machine.id };
  if (i.total < i.maxMachines) return { kind: 'create' };
  const oldest = idle[idle.length - 1];
  if (oldest) return { kind: 'make_room', id: oldest.machine.id };
  return { kind: 'wait' };
}

export interface ReleaseInput {
  reusable: boolean;
  /** The caller's reason the machine must go (interrupted, unclean): it goes, whatever `reusable` says. */
  reason?: RemovalReason;
  uses: number;
  maxUseCount: number;
  hasConnection: boolean;
  poolStopped: boolean;
  total: number;
  maxMachines: number;
}

export type ReleaseDecision = { kind: 'return' } | { kind: 'remove'; reason: RemovalReason };

/** After its job: back to the idle pool (through returning) only when the job left it healthy, it has uses
 *  left, the pool is open and the executor is within its cap (a lowered cap is reached as jobs end). */
export function decideRelease(i: ReleaseInput): ReleaseDecision {
  if (i.reason !== undefined) return { kind: 'remove', reason: i.reason };
  if (!i.reusable || !i.hasConnection) return { kind: 'remove', reason: 'not_reusable' };
  if (i.uses >= i.maxUseCount) return { kind: 'remove', reason: 'max_uses' };
  if (i.poolStopped) return { kind: 'remove', reason: 'shutdown' };
  if (i.total > i.maxMachines) return { kind: 'remove', reason: 'over_cap' };
  return { kind: 'return' };
}
