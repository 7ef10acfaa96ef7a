// The fleet's reconcilers: each a pure decision from the machine table (and, for garbage collection, the
// provider's list) to named actions. No I/O, time comes in as `now`; ExecutorFleet carries the actions out.
//
// - decidePool: boot machines up to the idle target, remove idle ones beyond it (planPool, with reasons).
// - decideBootTimeouts: machines on their way to ready (booting, warming, returning) past the deadline.
// - decideGarbage: the set difference between what the provider lists and what the table explains, as
//   karpenter's garbage collection does: unexplained machines past a grace period are orphans.
// - decideAdoption: whether a machine an earlier coordinator left joins the table.

import type { Machine } from '../core/machine.js';
import type { PoolSettings } from '../core/pool-config.js';
import type { RemovalReason } from './machine-phases.js';
import type { CreationTicket, MachineRecord } from './machine-table.js';
import { planPool, type PoolLimits } from './pool-policy.js';

export interface Removal {
  id: string;
  reason: RemovalReason;
}

export interface PoolDecision {
  /** What idle + on-the-way-to-idle should come to. */
  desiredIdle: number;
  /** Pool machines to start creating now. */
  create: number;
  /** Idle machines to remove now, each with its reason (over_cap first, then idle_time). */
  remove: Removal[];
}

/**
 * The idle pool's plan for the table as it is. In planPool's terms: `idle` are idle records; `booting`
 * (soon idle) are pool creations in flight, pool machines booting, and machines warming or returning;
 * `busy` (not the pool's) are busy machines, job creations and job machines booting, and machines being
 * removed, which occupy capacity until the provider confirmed they are gone.
 */
export function decidePool(
  records: readonly MachineRecord[],
  creating: readonly CreationTicket[],
  settings: PoolSettings,
  limits: PoolLimits,
  now: number,
  /** Jobs waiting for a slot at the cap: they have first claim on the next free one, so the pool does not
   *  create into it (a job that cannot use idle machines would otherwise lose every freed slot to a refill). */
  waitingJobs = 0,
): PoolDecision {
  const idle: Array<{ id: string; idleSince: number }> = [];
  let busy = 0;
  let booting = 0;
  for (const t of creating) t.purpose === 'pool' ? booting++ : busy++;
  for (const r of records) {
    switch (r.phase) {
      case 'idle':
        idle.push({ id: r.machine.id, idleSince: r.since });
        break;
      case 'booting':
        r.purpose === 'pool' ? booting++ : busy++;
        break;
      case 'warming':
      case 'returning':
        booting++;
        break;
      case 'busy':
      case 'removing':
        busy++;
        break;
      case 'gone':
        break;
    }
  }
  const plan = planPool({ idle, busy, booting }, settings, limits, now);
  // planPool lists the machines beyond the cap first (removed at once), then those idle past idleTime.
  const overCap = Math.max(0, busy + idle.length + booting - limits.maxMachines);
  const room = Math.max(0, limits.maxMachines - (busy + idle.length + booting) - waitingJobs);
  return {
    desiredIdle: plan.desiredIdle,
    create: Math.min(plan.create, room),
    remove: plan.remove.map((id, i) => ({ id, reason: i < overCap ? 'over_cap' : 'idle_time' })),
  };
}

/** Machines that should have been ready by now: `deadlineMs` after they entered booting, warming or
 *  returning (measured from the recorded transition time, as karpenter's liveness check does). The
 *  provider bounds its own boot; this catches a wait or a warm-up that never returns. */
export function decideBootTimeouts(records: readonly MachineRecord[], deadlineMs: number | undefined, now: number): Removal[] {
  if (deadlineMs === undefined) return [];
  return records
    .filter((r) => (r.phase === 'booting' || r.phase === 'warming' || r.phase === 'returning') && now - r.since >= deadlineMs)
    .map((r) => ({ id: r.machine.id, reason: 'boot_timeout' }));
}

/** Launch times are the cloud's clock, creations in flight ours: this much skew is allowed between them. */
export const CREATE_SKEW_MS = 60_000;

export interface GarbageInput {
  /** What the provider lists with this executor's ownership tags. */
  listed: readonly Machine[];
  records: readonly MachineRecord[];
  creating: readonly CreationTicket[];
  now: number;
  /** An unexplained machine younger than this is kept: it may be on its way back from `create`. */
  graceMs: number;
}

export type KeepReason = 'within_grace' | 'creation_in_flight';

export interface GarbageDecision {
  /** Listed, not in the table, old enough: remove (reason orphan). */
  orphans: Removal[];
  /** In the table as removing and still listed: a terminate that failed; try again, whatever its age. */
  retry: string[];
  /** In the table as removing and no longer listed as live: the provider is done with them. */
  gone: string[];
  /** Unexplained but kept for now, and why. */
  kept: Array<{ id: string; reason: KeepReason }>;
}

export function decideGarbage(i: GarbageInput): GarbageDecision {
  const byId = new Map(i.records.map((r) => [r.machine.id, r]));
  const live = i.listed.filter((m) => m.state !== 'terminated');
  const liveIds = new Set(live.map((m) => m.id));
  // A machine launched after a creation of ours started may be that creation's, not yet in the table.
  const oldestCreation = Math.min(...i.creating.map((t) => t.startedAt));
  const d: GarbageDecision = { orphans: [], retry: [], gone: [], kept: [] };
  for (const m of live) {
    const r = byId.get(m.id);
    if (r) {
      if (r.phase === 'removing') d.retry.push(m.id);
      continue;
    }
    // A creation time in the future (clock skew) counts as young.
    if (i.now - m.createdAt < i.graceMs) d.kept.push({ id: m.id, reason: 'within_grace' });
    else if (m.createdAt >= oldestCreation - CREATE_SKEW_MS) d.kept.push({ id: m.id, reason: 'creation_in_flight' });
    else d.orphans.push({ id: m.id, reason: 'orphan' });
  }
  for (const r of i.records) if (r.phase === 'removing' && !liveIds.has(r.machine.id)) d.gone.push(r.machine.id);
  return d;
}

export interface AdoptionInput {
  /** The table already holds this machine. */
  known: boolean;
  as: 'idle' | 'busy';
  /** Machines in the table and creations in flight. */
  total: number;
  maxMachines: number;
  /** The pool stopped growing (the coordinator takes no more jobs). */
  poolStopped: boolean;
  /** releaseAll ran: the fleet holds nothing any more. */
  shutDown: boolean;
}

export type AdoptionDecision = { accept: true } | { accept: false; reason: RemovalReason } | { accept: false; reason: 'known' };

/**
 * A machine left by an earlier coordinator of this deployment. A busy one is taken whatever the cap: a job
 * runs on it and refusing would end that job; over the cap, the pool removes idle machines at once
 * (over_cap) and the count comes down as jobs end. An idle one joins only within the cap and while the
 * pool is open. A machine the table already holds is left as it is ('known').
 */
export function decideAdoption(i: AdoptionInput): AdoptionDecision {
  if (i.known) return { accept: false, reason: 'known' };
  if (i.shutDown) return { accept: false, reason: 'shutdown' };
  if (i.as === 'busy') return { accept: true };
  if (i.poolStopped) return { accept: false, reason: 'shutdown' };
  if (i.total >= i.maxMachines) return { accept: false, reason: 'over_cap' };
  return { accept: true };
}
