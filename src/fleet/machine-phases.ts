// A machine's life in the fleet, as data: the phases, the moves between them, and the named reasons a move
// is made for. The table (machine-table.ts) refuses any move not listed here.
//
//   (created) ─▶ booting ─▶ warming ─▶ idle ─▶ busy ─▶ returning ─▶ idle …
//                   └────────────────────────────────▶ busy            (a machine created for a waiting job)
//   (adopted) ─▶ warming | busy                                        (left by an earlier coordinator)
//   every phase but gone ─▶ removing ─▶ gone
//
// Why these and no others:
// - `creating` is not a phase: until the provider answers there is no machine id to key a record by, so
//   creations in flight are counted by the table beside its records (MachineTable.beginCreate).
// - `warming` and `returning` are apart from `booting` because they are different facts: the machine
//   answers SSH and the executor is opening its connection (a fresh or adopted machine, or one back from a
//   job). The old fleet called a returning machine "booting".
// - No `draining`: a busy machine's fate is decided when its job releases it (decideRelease), so nothing
//   needs marking in advance; a job is never taken off a machine by the fleet.
// - `removing` is everything between the decision to remove and the provider's confirmation, including a
//   terminate that failed and waits for garbage collection: such a machine still counts against
//   maxMachines. `gone` is terminal: the table forgets the record once it gets there.

import { FleetError } from '../core/errors.js';

export const MACHINE_PHASES = ['booting', 'warming', 'idle', 'busy', 'returning', 'removing', 'gone'] as const;
export type MachinePhase = (typeof MACHINE_PHASES)[number];

/** Phases a machine may join the table in: created (booting), adopted idle (warming), adopted busy. */
export const ENTRY_PHASES: readonly MachinePhase[] = ['booting', 'warming', 'busy'];

/** The legal moves. Anything else is a bug, and MachineTable.transition throws. */
export const LEGAL_MOVES: Readonly<Record<MachinePhase, readonly MachinePhase[]>> = {
  booting: ['warming', 'busy', 'removing'],
  warming: ['idle', 'removing'],
  idle: ['busy', 'removing'],
  busy: ['returning', 'removing'],
  returning: ['idle', 'removing'],
  removing: ['gone'],
  gone: [],
};

export function isLegalMove(from: MachinePhase, to: MachinePhase): boolean {
  return LEGAL_MOVES[from].includes(to);
}

/**
 * Why a machine is removed: a closed set, in the log line and as the `reason` label of
 * fleetrunner_machines_removed_total.
 */
export const REMOVAL_REASONS = [
  'over_cap', // more machines than maxMachines (a lowered cap, an adoption beyond it)
  'idle_time', // idle past idleTime and not needed for the idle target
  'orphan', // carries our tags, no record explains it, older than the grace period
  'boot_timeout', // not ready within the fleet's boot deadline
  'boot_failed', // the provider said it will not become ready
  'warm_failed', // the executor could not open its connection ahead of a job
  'connection_lost', // an idle machine stopped answering
  'interrupted', // the cloud takes it back (spot interruption)
  'max_uses', // ran pool.maxUseCount jobs
  'unclean', // the executor could not clean up after its job
  'not_reusable', // its job did not end on its own (system failure, cancel, timeout, cut off)
  'canceled', // the job it was booting for stopped waiting
  'unreadable', // found at start, left by an earlier coordinator, and cannot be adopted (see discard)
  'make_room', // an idle machine removed at the cap for a job that needs another kind (on-demand)
  'shutdown', // the pool stopped or the coordinator is stopping
] as const;
export type RemovalReason = (typeof REMOVAL_REASONS)[number];

/** Why any other move is made. */
export type ProgressReason =
  | 'created' // joined the table booting: the provider returned it
  | 'adopted' // joined the table warming or busy: an earlier coordinator left it
  | 'ready' // booting → warming | busy: the machine answers SSH
  | 'warmed' // warming | returning → idle: its connection is open
  | 'taken' // idle → busy: a job took it
  | 'released' // busy → returning: its job left it reusable
  | 'terminated'; // removing → gone: the provider confirmed

export type TransitionReason = RemovalReason | ProgressReason;

/**
 * A move the table refuses: `illegal` (not in LEGAL_MOVES, or joining the table in a phase that is not an
 * entry phase) or stale (the machine is not in the phase the caller expected: another path moved it first).
 * A machine the table does not hold is reported as `gone`.
 */
export class MachineTransitionError extends FleetError {
  constructor(
    readonly machineId: string,
    readonly from: MachinePhase,
    readonly to: MachinePhase,
    readonly reason: TransitionReason,
    /** The phase the machine is really in. */
    readonly actual: MachinePhase,
    readonly illegal: boolean,
  ) {
    super(
      illegal
        ? `machine ${machineId}: illegal move ${from} → ${to} (${reason})`
        : `machine ${machineId}: cannot move ${from} → ${to} (${reason}): it is ${actual}`,
    );
  }
}
