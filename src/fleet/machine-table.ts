// The machines of one executor: one record per machine, changed only through checked transitions
// (machine-phases.ts), plus the creations in flight. Every count the fleet reports or decides on is derived
// from here, so there is one place where a machine's phase lives. No I/O; time comes in as `now`.

import type { ConnectionInfo, Machine } from '../core/machine.js';
import { ENTRY_PHASES, isLegalMove, MachineTransitionError, type MachinePhase, type TransitionReason } from './machine-phases.js';

/** Who a machine is for: the idle pool, or a job already waiting for it. */
export type Purpose = 'pool' | 'job';

export interface MachineRecord {
  readonly machine: Machine;
  readonly phase: MachinePhase;
  readonly purpose: Purpose;
  readonly connection?: ConnectionInfo;
  /** Jobs handed this machine so far (the one running included). */
  readonly uses: number;
  /** When the machine entered its phase (ms epoch): idle age, boot deadlines. */
  readonly since: number;
  /** The reason of the move into this phase. */
  readonly reason: TransitionReason;
}

export interface CreationTicket {
  readonly purpose: Purpose;
  readonly startedAt: number;
}

/** Every phase with its count, and creations in flight by purpose. */
export type PhaseCounts = Record<MachinePhase, number> & { creatingForPool: number; creatingForJobs: number };

export interface Patch {
  connection?: ConnectionInfo;
  uses?: number;
}

export class MachineTable {
  private readonly records = new Map<string, MachineRecord>();
  private readonly creations = new Set<CreationTicket>();

  /** A creation asked of the provider: counted until endCreate, so the cap sees it before it has an id. */
  beginCreate(purpose: Purpose, now: number): CreationTicket {
    const t: CreationTicket = { purpose, startedAt: now };
    this.creations.add(t);
    return t;
  }

  /** Ends a creation and records its machine as booting in the same turn, so nothing can see the machine
   *  in neither count (the over-provisioning the old fleet fixed once). */
  endCreate(ticket: CreationTicket, machine: Machine | undefined, now: number): MachineRecord | undefined {
    this.creations.delete(ticket);
    if (!machine) return undefined;
    return this.add(machine, 'booting', 'created', { purpose: ticket.purpose, uses: ticket.purpose === 'job' ? 1 : 0 }, now);
  }

  /** A machine joins the table in an entry phase (created: booting; adopted: warming or busy). Throws
   *  MachineTransitionError for another phase, or when the table already holds the machine. */
  add(machine: Machine, phase: MachinePhase, reason: TransitionReason, o: { purpose: Purpose; uses: number; connection?: ConnectionInfo }, now: number): MachineRecord {
    const held = this.records.get(machine.id);
    if (held || !ENTRY_PHASES.includes(phase)) throw new MachineTransitionError(machine.id, 'gone', phase, reason, held?.phase ?? 'gone', !held);
    const rec: MachineRecord = { machine, phase, purpose: o.purpose, uses: o.uses, since: now, reason, ...(o.connection && { connection: o.connection }) };
    this.records.set(machine.id, rec);
    return rec;
  }

  /**
   * Moves a machine from `from` to `to`. Throws MachineTransitionError when the move is not legal, or when
   * the machine is not in `from` (a stale caller: another path moved it first). Reaching `gone` forgets it.
   */
  transition(id: string, from: MachinePhase, to: MachinePhase, reason: TransitionReason, now: number, patch: Patch = {}): MachineRecord {
    const rec = this.records.get(id);
    const illegal = !isLegalMove(from, to);
    if (illegal || rec?.phase !== from) throw new MachineTransitionError(id, from, to, reason, rec?.phase ?? 'gone', illegal);
    const next: MachineRecord = { ...rec, ...patch, phase: to, since: now, reason };
    if (to === 'gone') this.records.delete(id);
    else this.records.set(id, next);
    return next;
  }

  get(id: string): MachineRecord | undefined {
    return this.records.get(id);
  }

  /** True when the table holds `id` in `phase`: how an async step checks nothing moved the machine meanwhile. */
  is(id: string, phase: MachinePhase): boolean {
    return this.records.get(id)?.phase === phase;
  }

  all(): MachineRecord[] {
    return [...this.records.values()];
  }

  inPhase(phase: MachinePhase): MachineRecord[] {
    return this.all().filter((r) => r.phase === phase);
  }

  creating(): readonly CreationTicket[] {
    return [...this.creations];
  }

  /** Machines that exist or are being created, in every phase: what maxMachines bounds. */
  total(): number {
    return this.creations.size + this.records.size;
  }

  counts(): PhaseCounts {
    const c: PhaseCounts = { booting: 0, warming: 0, idle: 0, busy: 0, returning: 0, removing: 0, gone: 0, creatingForPool: 0, creatingForJobs: 0 };
    for (const r of this.records.values()) c[r.phase]++;
    for (const t of this.creations) t.purpose === 'pool' ? c.creatingForPool++ : c.creatingForJobs++;
    return c;
  }
}
