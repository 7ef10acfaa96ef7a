// Deployment-level garbage collection (`fleetrunner gc`, docs/architecture.md §4.1, §4.2): what to do with
// every machine of a fleet, decided from the machines' tags alone. A machine of this deployment (its
// `coordinator` tag is this config's coordinatorId) that no running coordinator explains is removed once
// past the grace period, whichever task launched it; a machine of another deployment of the same fleet
// name (another token or GitLab) is listed and never touched. Pure: no I/O, no clock of its own.

import type { Machine } from '../core/machine.js';

/** Why a machine is kept or removed: a closed set, each with a sentence for people (GC_REASONS). */
export type GcReason =
  | 'other_deployment'
  | 'already_gone'
  | 'running_coordinator'
  | 'coordinator_unknown'
  | 'within_grace'
  | 'unknown_executor'
  | 'no_coordinator';

export type GcAction = 'keep' | 'remove';

export interface GcDecision {
  machine: Machine;
  action: GcAction;
  reason: GcReason;
}

/** Each reason, its action and what the table says about it. */
export const GC_REASONS: Readonly<Record<GcReason, { action: GcAction; text: string }>> = {
  other_deployment: { action: 'keep', text: 'another deployment owns it (another coordinator tag): never touched' },
  already_gone: { action: 'keep', text: 'already terminated: nothing to do' },
  running_coordinator: { action: 'keep', text: "a coordinator of this deployment holds the lease: its own garbage collection manages it" },
  coordinator_unknown: { action: 'keep', text: 'cannot tell whether a coordinator of this deployment runs (no lease configured, or the lease store did not answer): use --force to remove' },
  within_grace: { action: 'keep', text: 'younger than the grace period' },
  unknown_executor: { action: 'remove', text: 'its executor is not in the config and no coordinator of this deployment runs' },
  no_coordinator: { action: 'remove', text: 'no coordinator of this deployment runs and it is past the grace period' },
};

export interface PlanGarbageInput {
  /** Every machine listed with this fleet's tags, of any coordinator. */
  machines: readonly Machine[];
  /** This deployment's `coordinator` tag (deploymentIdentity). */
  coordinatorId: string;
  /** Names of the executors in the config. */
  executors: readonly string[];
  /** Whether a coordinator of this deployment holds the lease; 'unknown' without a lease (or store answer). */
  coordinatorRunning: boolean | 'unknown';
  /** ms epoch. */
  now: number;
  /** A machine younger than this is kept: it may be booting for a coordinator that just started. */
  graceMs: number;
}

/** One decision per machine, in the order given. */
export function planGarbage(i: PlanGarbageInput): GcDecision[] {
  const executors = new Set(i.executors);
  return i.machines.map((machine) => {
    const reason = reasonFor(machine, i, executors);
    return { machine, action: GC_REASONS[reason].action, reason };
  });
}

function reasonFor(m: Machine, i: PlanGarbageInput, executors: ReadonlySet<string>): GcReason {
  if (m.tags.coordinator !== i.coordinatorId) return 'other_deployment';
  if (m.state === 'terminated') return 'already_gone';
  if (i.coordinatorRunning === true) return 'running_coordinator';
  if (i.coordinatorRunning === 'unknown') return 'coordinator_unknown';
  // A creation time in the future (clock skew) counts as young.
  if (i.now - m.createdAt < i.graceMs) return 'within_grace';
  return executors.has(m.tags.executor) ? 'no_coordinator' : 'unknown_executor';
}
