// The I/O steps on one machine, each moving it through the table: create (a creation in flight, then a
// booting record), wait until it answers, warm its connection (to idle), remove (to removing, then gone
// once the provider confirmed). ExecutorFleet decides when; these carry it out and keep the table honest:
// each step re-checks the phase it expects, because a removal, a shutdown or a boot timeout may have moved
// the machine while the step waited.

import { childAbort, type ChildAbort } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { MachineWarmer } from '../core/executor.js';
import type { Logger } from '../core/logger.js';
import type { CapacityProvider, ConnectionInfo, CreateOptions, CreateResult, Machine, MachineLabels, OwnershipTags } from '../core/machine.js';
import type { RemovalReason } from './machine-phases.js';
import type { MachineRecord, MachineTable, Purpose } from './machine-table.js';

export interface MachineStepsOptions {
  table: MachineTable;
  provider: CapacityProvider;
  tags: OwnershipTags;
  clock: Clock;
  logger: Logger;
  warmer?: MachineWarmer;
  /** Aborts every wait and warm-up (releaseAll). */
  shutdown: AbortSignal;
  /** True when a machine that just got ready has no use any more (the pool stopped, no job waits). */
  poolClosed: () => boolean;
  /** A slot was freed or a machine became idle: wake callers waiting at the cap. */
  onSlotChange: () => void;
  /** Something worth a reconcile changed (a machine became idle, or left). */
  onChange: () => void;
  onMachineRemoved?: (executor: string, reason: RemovalReason) => void;
}

/** How a warm-up ended: idle; moved by another path meanwhile; the pool closed; or the connection failed. */
export type WarmResult = 'idle' | 'moved' | 'closed' | { warmFailed: string };

export class MachineSteps {
  /** Per machine waiting to be ready or warming: aborted when the machine is removed meanwhile. */
  /** Each ends with its machine's removal or the shutdown (a child of the shutdown signal: one per machine
   *  under a signal that lives as long as the coordinator, so no AbortSignal.any). */
  private readonly waits = new Map<string, ChildAbort>();

  constructor(private readonly o: MachineStepsOptions) {}

  /** One machine from the provider: counted as being created while the call runs, and in the table as
   *  booting from the same turn on; a provider that throws is a failed creation like one that reports errors. */
  async create(purpose: Purpose, createOpts?: CreateOptions): Promise<MachineRecord | { errors: unknown[] }> {
    const ticket = this.o.table.beginCreate(purpose, this.o.clock.now());
    let res: CreateResult;
    try {
      res = await this.o.provider.create(1, this.o.tags, ...(createOpts ? [createOpts] : []));
    } catch (e) {
      res = { machines: [], errors: [e instanceof Error ? e : new Error(String(e))] };
    }
    const rec = this.o.table.endCreate(ticket, res.machines[0], this.o.clock.now());
    if (!rec) this.o.onSlotChange(); // the slot it held is free again
    return rec ?? { errors: res.errors };
  }

  /** The provider's waitReady, also ended by a removal of the machine or the shutdown. */
  async waitReady(machine: Machine, signal?: AbortSignal): Promise<{ connection: ConnectionInfo } | { error: unknown }> {
    const ctl = this.wait(machine.id);
    try {
      return { connection: await this.o.provider.waitReady(machine, signal ? AbortSignal.any([ctl.signal, signal]) : ctl.signal) };
    } catch (e) {
      return { error: e };
    } finally {
      this.endWait(machine.id, ctl);
    }
  }

  /** Opens the machine's connection ahead of its next job and moves it to idle. Says what happened
   *  instead when it could not; the caller removes the machine. */
  async warm(id: string, from: 'warming' | 'returning'): Promise<WarmResult> {
    const connection = this.o.table.get(id)?.connection;
    if (!connection) return { warmFailed: `machine ${id} has no connection` };
    const ctl = this.wait(id);
    try {
      await this.o.warmer?.warm(connection, (reason) => this.lost(id, reason), ctl.signal);
    } catch (e) {
      return this.o.table.is(id, from) ? { warmFailed: `could not connect to machine ${id}: ${errorMessage(e)}` } : 'moved';
    } finally {
      this.endWait(id, ctl);
    }
    if (!this.o.table.is(id, from)) {
      // Removed meanwhile (boot timeout, releaseAll), which cooled it before this warm-up ended: cool again.
      this.o.warmer?.cool(connection);
      return 'moved';
    }
    if (this.o.poolClosed()) return 'closed';
    this.o.table.transition(id, from, 'idle', 'warmed', this.o.clock.now());
    this.label(id, { state: 'idle' });
    this.o.onSlotChange();
    this.o.onChange();
    return 'idle';
  }

  /** Moves the machine to removing with its reason and terminates it; the table forgets it once the
   *  provider confirmed. A failed terminate leaves it removing: it still counts against the cap, and the
   *  next garbage collection tries again. */
  async remove(id: string, reason: RemovalReason): Promise<void> {
    const rec = this.o.table.get(id);
    if (!rec || rec.phase === 'removing' || rec.phase === 'gone') return;
    this.o.table.transition(id, rec.phase, 'removing', reason, this.o.clock.now());
    this.removed(id, reason, rec.phase, rec);
    this.waits.get(id)?.abort(new Error(`machine ${id} is being removed (${reason})`));
    if (rec.connection) this.o.warmer?.cool(rec.connection);
    await this.terminate([id]);
  }

  /** The log line and the observer call of one removal decision (also for machines the table never held). */
  removed(id: string, reason: RemovalReason, from: string, rec?: MachineRecord): void {
    this.o.logger.info({ executor: this.o.tags.executor, machine: id, reason, from, ...(rec && { inPhaseMs: this.o.clock.now() - rec.since }) }, 'removing machine');
    this.o.onMachineRemoved?.(this.o.tags.executor, reason);
  }

  /** Terminates; on success every one of `ids` the table holds as removing is gone. True when it worked. */
  async terminate(ids: string[]): Promise<boolean> {
    let ok = false;
    try {
      const { errors } = await this.o.provider.terminate(ids);
      for (const e of errors) this.o.logger.error({ executor: this.o.tags.executor, machines: ids, err: errorMessage(e) }, 'terminate failed; garbage collection will retry');
      ok = errors.length === 0;
    } catch (e) {
      this.o.logger.error({ executor: this.o.tags.executor, machines: ids, err: errorMessage(e) }, 'terminate failed; garbage collection will retry');
    }
    if (ok) {
      const now = this.o.clock.now();
      for (const id of ids) if (this.o.table.is(id, 'removing')) this.o.table.transition(id, 'removing', 'gone', 'terminated', now);
    }
    this.o.onSlotChange();
    this.o.onChange();
    return ok;
  }

  /** Stores what the machine is doing with it (a provider that keeps labels), for a successor to read.
   *  In the background: a label that could not be written is logged, never a job's failure. */
  label(id: string, labels: MachineLabels): void {
    const provider = this.o.provider;
    if (!provider.label) return;
    void Promise.resolve()
      .then(() => provider.label!(id, labels))
      .catch((e: unknown) => this.o.logger.warn({ executor: this.o.tags.executor, machine: id, state: labels.state, err: errorMessage(e) }, 'could not label machine'));
  }

  private wait(id: string): ChildAbort {
    const ctl = childAbort(this.o.shutdown);
    this.waits.set(id, ctl);
    return ctl;
  }

  private endWait(id: string, ctl: ChildAbort): void {
    ctl.release();
    if (this.waits.get(id) === ctl) this.waits.delete(id);
  }

  private lost(id: string, reason: Error): void {
    if (!this.o.table.is(id, 'idle')) return;
    this.o.logger.warn({ executor: this.o.tags.executor, machine: id, reason: errorMessage(reason) }, 'idle machine stopped answering; replacing it');
    void this.remove(id, 'connection_lost');
  }
}
