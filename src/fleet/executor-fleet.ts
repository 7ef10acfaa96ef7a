// The machines of one executor: the imperative shell around the machine table (machine-table.ts, phases
// and legal moves in machine-phases.ts) and the pure decisions (reconcilers.ts, handout.ts,
// create-failure.ts). It hands ready machines to jobs, takes them back, keeps the idle pool at its policy's
// size, adopts machines an earlier coordinator left, and garbage-collects what the table does not explain.
// The provider's list is the source of truth; the table is what this process knows.
//
// Every machine's phase lives in the table and changes only through `transition`, which refuses illegal or
// stale moves; every async step re-checks the phase it expects before it moves a machine on (a removal,
// a shutdown or a boot timeout may have come first). Every removal carries a named reason that reaches the
// log line and the onMachineRemoved observer (metrics). All phases count against maxMachines, so the pool
// never pushes the executor over its cap.

import { errorMessage, PermanentError } from '../core/errors.js';
import type { ConnectionInfo, Machine } from '../core/machine.js';
import { DEFAULT_POOL, type PoolConfig } from '../core/pool-config.js';
import { classifyFailure, decideRetry, poolRetryDelay } from './create-failure.js';
import { MachineUnavailableError, type AcquiredMachine, type AcquireOptions, type ExecutorFleetOptions, type FleetCounts, type ReleaseOptions } from './fleet-api.js';
import { decideHandout, decideRelease } from './handout.js';
import { MachineSteps } from './machine-steps.js';
import { MachineTable, type Purpose } from './machine-table.js';
import { activeSettings } from './pool-policy.js';
import { decideAdoption, decideBootTimeouts, decideGarbage, decidePool } from './reconcilers.js';
import { ChangeWaiters, CoalescedRun, SettledKick } from './wakeups.js';

export type { RemovalReason } from './machine-phases.js';
export { MachineUnavailableError, type AcquiredMachine, type AcquireOptions, type ExecutorFleetOptions, type FleetCounts, type ReleaseOptions } from './fleet-api.js';

/** A failed attempt: where it failed (and on which machine, once there was one), its errors and why, for people. */
type Failure = { stage: 'create' | 'boot'; machine?: string; errors: unknown[]; why: string };

export class ExecutorFleet {
  private readonly table = new MachineTable();
  private readonly attempts: number;
  private maxMachines: number;
  private pool: PoolConfig;
  /** The pool stops growing (the coordinator takes no more jobs); machines booting for waiting jobs finish. */
  private readonly stopCtl = new AbortController();
  /** Everything stops: boots and connections in flight are abandoned (releaseAll). */
  private readonly shutdownCtl = new AbortController();
  /** Creations, boots and warm-ups in flight, so a shutdown can wait for them and remove what they made. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Adopted idle machines whose connection is being opened (see adoptionSettled). */
  private readonly adoptedWarmups = new Map<string, Promise<void>>();
  private readonly changes = new ChangeWaiters();
  private readonly reconciler = new CoalescedRun(() => this.reconcileOnce(), () => !this.stopCtl.signal.aborted);
  private readonly kicker: SettledKick;
  private readonly steps: MachineSteps;
  private poolFailures = 0;
  /** Jobs in acquire waiting for a slot at the cap (decidePool leaves them the next free one). */
  private waitingJobs = 0;
  private poolRetryAt = 0;
  private activeSchedule: number | undefined;

  constructor(private readonly opts: ExecutorFleetOptions) {
    this.attempts = opts.acquireAttempts ?? 3;
    this.maxMachines = opts.maxMachines ?? Number.POSITIVE_INFINITY;
    this.pool = opts.pool ?? DEFAULT_POOL;
    this.kicker = new SettledKick({
      clock: opts.clock,
      settleMs: opts.settleMs ?? 250,
      stopped: this.stopCtl.signal,
      run: () => void this.reconcile().catch((e) => this.opts.logger.warn({ err: errorMessage(e) }, 'idle pool reconcile failed')),
    });
    this.steps = new MachineSteps({
      table: this.table,
      provider: opts.provider,
      tags: opts.tags,
      clock: opts.clock,
      logger: opts.logger,
      ...(opts.warmer && { warmer: opts.warmer }),
      shutdown: this.shutdownCtl.signal,
      poolClosed: () => this.poolClosed,
      onSlotChange: () => this.changes.wake(),
      onChange: () => this.kick(),
      ...(opts.onMachineRemoved && { onMachineRemoved: opts.onMachineRemoved }),
    });
  }

  /** A reloaded config (SIGHUP): a new cap and pool take effect at the next reconcile; machines in use
   *  are never disturbed (a lower cap is reached as jobs end and idle machines go). */
  reconfigure(o: { maxMachines: number; pool: PoolConfig }): void {
    this.maxMachines = o.maxMachines;
    this.pool = o.pool;
    void this.reconcile().catch(() => undefined);
  }

  get machinesInUse(): number {
    return this.table.counts().busy;
  }

  counts(): FleetCounts {
    const c = this.table.counts();
    return { booting: c.creatingForPool + c.creatingForJobs + c.booting + c.warming + c.returning, idle: c.idle, busy: c.busy, removing: c.removing };
  }

  /** A ready machine: an idle one if there is one (and no market was asked for), else a new one.
   *  MachineUnavailableError at once for a permanent error, else after `acquireAttempts` failed attempts. */
  async acquire(signal: AbortSignal, onProgress: (line: string) => void, opts: AcquireOptions = {}): Promise<AcquiredMachine> {
    const reasons: string[] = [];
    let attempt = 0;
    let unconfirmed = opts.confirmed;
    for (;;) {
      signal.throwIfAborted();
      if (this.shutdownCtl.signal.aborted) throw new MachineUnavailableError('the executor is shutting down', 'shutdown');
      const d = decideHandout({ records: this.table.all(), total: this.table.total(), maxMachines: this.maxMachines, ...(opts.market && { market: opts.market }), fresh: opts.task !== undefined });
      if (d.kind === 'take') return this.take(d.id, opts.job);
      if (unconfirmed) {
        // Nothing is launched or removed for a job GitLab has not confirmed yet; then decide again. It counts
        // as waiting meanwhile (the pool does not give its slot away).
        this.waitingJobs++;
        try {
          await untilSettled(unconfirmed, signal);
        } finally {
          this.waitingJobs--;
        }
        unconfirmed = undefined;
        continue;
      }
      if (d.kind !== 'create') {
        // make_room: the slot it frees is this job's. wait: every machine is busy or on its way, and the next
        // one to become idle (or to leave) is ours. Either way the pool must not refill into that slot.
        this.waitingJobs++;
        try {
          await (d.kind === 'make_room' ? this.steps.remove(d.id, 'make_room') : this.changes.next(signal));
        } finally {
          this.waitingJobs--;
        }
        continue;
      }
      attempt++;
      const p = this.createForJob(signal, opts);
      this.track(p);
      const got = await p;
      if ('connection' in got) return got;
      reasons.push(got.why);
      const cls = classifyFailure(got.errors);
      const next = decideRetry({ stage: got.stage, cls, attempt, maxAttempts: this.attempts, retryDelayMs: this.opts.retryDelayMs ?? 1000 });
      this.opts.logger.warn({ executor: this.opts.tags.executor, attempt, class: cls, next: next.reason, reason: got.why }, got.stage === 'create' ? 'machine creation failed' : 'machine did not become ready');
      onProgress(`WARNING: ${got.machine === undefined ? 'could not create a machine' : `machine ${got.machine} did not become ready`} (attempt ${attempt}/${this.attempts}${cls === 'permanent' ? ', not retried: this error does not go away by trying again' : ''}): ${got.why}`);
      if (next.kind === 'fail') {
        if (next.reason === 'permanent') throw new MachineUnavailableError(`no machine could be made ready: ${got.why}`, 'permanent', { cause: got.errors[0] });
        throw new MachineUnavailableError(`no machine could be made ready after ${attempt} attempts: ${reasons.join('; ')}`);
      }
      if (next.delayMs > 0) await this.opts.clock.sleep(next.delayMs, signal);
    }
  }

  /** Takes the machine back after its job: to the idle pool when decideRelease allows, otherwise removed
   *  with its reason. Never throws: failures are logged and left to garbage collection. */
  async release(machine: Machine, o: ReleaseOptions = {}): Promise<void> {
    const rec = this.table.get(machine.id);
    if (!rec) {
      // The table let go of it (releaseAll removed it, counted as shutdown): terminating again is harmless.
      this.opts.logger.debug({ executor: this.opts.tags.executor, machine: machine.id }, 'released a machine the fleet no longer holds: terminating it again');
      await this.steps.terminate([machine.id]);
      return;
    }
    if (rec.phase !== 'busy') return; // already on its way out (releaseAll, a boot timeout cannot reach busy)
    const d = decideRelease({
      reusable: o.reusable ?? false,
      ...(o.reason && { reason: o.reason }),
      uses: rec.uses,
      maxUseCount: this.pool.maxUseCount,
      hasConnection: rec.connection !== undefined,
      poolStopped: this.stopCtl.signal.aborted,
      total: this.table.total(),
      maxMachines: this.maxMachines,
    });
    if (d.kind === 'remove') return this.steps.remove(machine.id, d.reason);
    // Back to the pool in the background: the job's final state need not wait for the connection.
    this.table.transition(machine.id, 'busy', 'returning', 'released', this.opts.clock.now());
    this.track(
      this.warmSettled(machine.id, 'returning').then((ok) => {
        if (ok) this.opts.logger.info({ executor: this.opts.tags.executor, machine: machine.id, uses: rec.uses }, 'machine back in the idle pool');
      }),
    );
  }

  /** The machines carrying this executor's ownership tags (the coordinator tag is deployment-wide). */
  owned(): Promise<Machine[]> {
    return this.opts.provider.list(this.opts.tags);
  }

  /** Resolves once an adopted idle machine is idle or removed: start-up waits for it, so the first job
   *  finds the pool an earlier coordinator left instead of booting a machine beside it. */
  adoptionSettled(id: string): Promise<void> {
    return this.adoptedWarmups.get(id) ?? Promise.resolve();
  }

  /** A machine found at start that cannot be adopted (its records cannot be read, or its executor style
   *  cannot pick a job back up): removed with reason `unreadable`, the detail in the log line. */
  async discard(machine: Machine, why: string): Promise<void> {
    if (this.table.get(machine.id)) return;
    this.opts.logger.warn({ executor: this.opts.tags.executor, machine: machine.id, why }, 'a machine found at start cannot be adopted');
    this.steps.removed(machine.id, 'unreadable', 'adoption');
    await this.steps.terminate([machine.id]);
  }

  /**
   * A machine an earlier coordinator of this deployment left (see decideAdoption). `idle`: it joins the pool
   * through the warmer (idle from now on); `busy`: a job is being reattached to it, and it comes back through
   * `release()` as usual. Returns the machine as acquired, or undefined when it was not taken: a machine the
   * table already holds is left as it is, any other refused machine is removed with the logged reason.
   */
  adopt(machine: Machine, connection: ConnectionInfo, as: 'idle' | 'busy'): AcquiredMachine | undefined {
    const d = decideAdoption({
      known: this.table.get(machine.id) !== undefined,
      as,
      total: this.table.total(),
      maxMachines: this.maxMachines,
      poolStopped: this.stopCtl.signal.aborted,
      shutDown: this.shutdownCtl.signal.aborted,
    });
    const log = { executor: this.opts.tags.executor, machine: machine.id, as };
    if (!d.accept) {
      if (d.reason === 'known') {
        this.opts.logger.warn(log, 'not adopting a machine the fleet already holds');
        return undefined;
      }
      this.steps.removed(machine.id, d.reason, `adoption as ${as}`);
      void this.steps.terminate([machine.id]);
      return undefined;
    }
    const now = this.opts.clock.now();
    const purpose: Purpose = as === 'busy' ? 'job' : 'pool';
    this.table.add(machine, as === 'busy' ? 'busy' : 'warming', 'adopted', { purpose, uses: as === 'busy' ? 1 : 0, connection }, now);
    this.opts.logger.info(log, 'adopted a machine an earlier coordinator left');
    if (as === 'idle') {
      const warmed = this.warmSettled(machine.id, 'warming').then(() => undefined);
      this.adoptedWarmups.set(machine.id, warmed);
      void warmed.finally(() => this.adoptedWarmups.delete(machine.id));
      this.track(warmed);
    }
    this.kick();
    return { machine, connection };
  }

  /**
   * Brings the fleet to what its policy asks for now: removes machines past the boot deadline, boots
   * machines up to the idle target (within maxMachines and maxGrowthRate) and removes idle ones beyond it.
   * Runs on a timer and after every change; concurrent calls fold into one.
   */
  reconcile(): Promise<void> {
    return this.reconciler.run();
  }

  /** Stops growing the pool and removes idle machines (the coordinator stopped taking jobs). A pool
   *  machine still on its way goes to a job waiting for one, or is removed once it is up. */
  async stopPool(): Promise<void> {
    if (!this.stopCtl.signal.aborted) this.stopCtl.abort(new Error('the executor is shutting down'));
    await Promise.all(this.table.inPhase('idle').map((r) => this.steps.remove(r.machine.id, 'shutdown')));
    this.changes.wake();
  }

  /** Garbage collection as a set difference (decideGarbage): terminates owned machines the table does not
   *  explain and that are older than `minAgeMs` (orphans), and retries failed terminates whatever their
   *  age. Returns the ids it removed. */
  async collectGarbage(minAgeMs = 0): Promise<string[]> {
    const listed = await this.opts.provider.list(this.opts.tags);
    const now = this.opts.clock.now();
    const d = decideGarbage({ listed, records: this.table.all(), creating: this.table.creating(), now, graceMs: minAgeMs });
    for (const id of d.gone) if (this.table.is(id, 'removing')) this.table.transition(id, 'removing', 'gone', 'terminated', now);
    for (const o of d.orphans) this.steps.removed(o.id, o.reason, 'untracked');
    const ids = [...d.orphans.map((o) => o.id), ...d.retry];
    if (ids.length) {
      const ok = await this.steps.terminate(ids);
      this.opts.logger.info({ executor: this.opts.tags.executor, orphans: d.orphans.map((o) => o.id), retried: d.retry, ok }, 'garbage collection removed machines');
    }
    this.changes.wake();
    return ids;
  }

  /** Terminates every machine this executor owns (shutdown): what the provider lists and what the table
   *  holds, after creations in flight have returned (a launch that lands later would otherwise be missed). */
  async releaseAll(): Promise<void> {
    if (!this.stopCtl.signal.aborted) this.stopCtl.abort(new Error('the executor is shutting down'));
    if (!this.shutdownCtl.signal.aborted) this.shutdownCtl.abort(new Error('the executor is shutting down'));
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const ids = new Set<string>();
    const now = this.opts.clock.now();
    for (const r of this.table.all()) {
      ids.add(r.machine.id);
      if (r.connection) this.opts.warmer?.cool(r.connection);
      if (r.phase === 'removing') continue;
      this.table.transition(r.machine.id, r.phase, 'removing', 'shutdown', now);
      this.steps.removed(r.machine.id, 'shutdown', r.phase);
    }
    try {
      for (const m of await this.opts.provider.list(this.opts.tags)) {
        if (m.state === 'terminated' || ids.has(m.id)) continue;
        ids.add(m.id);
        this.steps.removed(m.id, 'shutdown', 'untracked');
      }
    } catch (e) {
      this.opts.logger.error({ executor: this.opts.tags.executor, err: errorMessage(e) }, 'could not list machines at shutdown; removing the ones this process knows');
    }
    if (ids.size) await this.steps.terminate([...ids]);
    this.changes.wake();
  }

  /** The idle machine `id`, now busy for a job. */
  private take(id: string, job: string | undefined): AcquiredMachine {
    const rec = this.table.get(id)!;
    const r = this.table.transition(id, 'idle', 'busy', 'taken', this.opts.clock.now(), { uses: rec.uses + 1 });
    if (job !== undefined) this.steps.label(id, { state: 'busy', job });
    this.opts.logger.debug({ executor: this.opts.tags.executor, machine: id }, 'machine taken from the idle pool');
    this.kick();
    return { machine: r.machine, connection: r.connection! };
  }

  private async createForJob(signal: AbortSignal, opts: AcquireOptions): Promise<AcquiredMachine | Failure> {
    const rec = await this.steps.create('job', opts.market || opts.task ? { ...(opts.market && { market: opts.market }), ...(opts.task && { task: opts.task }) } : undefined);
    if (!('machine' in rec)) return { stage: 'create', errors: rec.errors, why: rec.errors.map(errorMessage).join('; ') || 'the provider returned no machine' };
    const id = rec.machine.id;
    if (this.shutdownCtl.signal.aborted) {
      await this.steps.remove(id, 'shutdown');
      return { stage: 'boot', machine: id, errors: [new PermanentError('the executor is shutting down')], why: 'the executor is shutting down' };
    }
    const ready = await this.steps.waitReady(rec.machine, signal);
    const now = this.opts.clock.now();
    if (!this.table.is(id, 'booting')) {
      // Its removal (a boot timeout, a shutdown) aborted the wait with the reason.
      const why = 'error' in ready ? errorMessage(ready.error) : `machine ${id} was removed while booting`;
      return { stage: 'boot', machine: id, errors: [new Error(why)], why };
    }
    if ('error' in ready) {
      await this.steps.remove(id, signal.aborted ? 'canceled' : 'boot_failed');
      signal.throwIfAborted();
      return { stage: 'boot', machine: id, errors: [ready.error], why: errorMessage(ready.error) };
    }
    this.table.transition(id, 'booting', 'busy', 'ready', now, { connection: ready.connection });
    if (opts.job !== undefined) this.steps.label(id, { state: 'busy', job: opts.job });
    this.opts.logger.info({ executor: this.opts.tags.executor, machine: id }, 'machine ready');
    return { machine: rec.machine, connection: ready.connection };
  }

  private async bootForPool(): Promise<void> {
    const rec = await this.steps.create('pool');
    if (!('machine' in rec)) {
      this.poolFailed(rec.errors, rec.errors.map(errorMessage).join('; ') || 'the provider returned no machine');
      return;
    }
    const id = rec.machine.id;
    if (this.poolClosed) return this.steps.remove(id, 'shutdown');
    const ready = await this.steps.waitReady(rec.machine);
    if (!this.table.is(id, 'booting')) return; // removed meanwhile; its removal said why
    if ('error' in ready) {
      if (this.poolClosed) return this.steps.remove(id, 'shutdown');
      // The back-off first: the removal kicks a reconcile, which must not boot a replacement at once.
      this.poolFailed([ready.error], `machine ${id} did not become ready: ${errorMessage(ready.error)}`);
      return this.steps.remove(id, 'boot_failed');
    }
    this.table.transition(id, 'booting', 'warming', 'ready', this.opts.clock.now(), { connection: ready.connection });
    const warmed = await this.steps.warm(id, 'warming');
    if (warmed === 'idle') {
      this.poolFailures = 0;
      this.opts.logger.info({ executor: this.opts.tags.executor, machine: id }, 'machine ready and idle');
    } else if (warmed === 'closed') {
      await this.steps.remove(id, 'shutdown');
    } else if (warmed !== 'moved') {
      this.poolFailed([], warmed.warmFailed);
      await this.steps.remove(id, 'warm_failed');
    }
  }

  /** warm() for a returning or adopted machine: one that does not get to idle is removed. True when idle. */
  private async warmSettled(id: string, from: 'warming' | 'returning'): Promise<boolean> {
    const r = await this.steps.warm(id, from);
    if (r === 'idle') return true;
    if (r === 'closed') await this.steps.remove(id, 'shutdown');
    else if (r !== 'moved') {
      this.opts.logger.warn({ executor: this.opts.tags.executor, machine: id, reason: r.warmFailed }, 'machine could not go back to the idle pool');
      await this.steps.remove(id, 'warm_failed');
    }
    return false;
  }

  private async reconcileOnce(): Promise<void> {
    const now = this.opts.clock.now();
    for (const r of decideBootTimeouts(this.table.all(), this.opts.bootTimeoutMs, now)) void this.steps.remove(r.id, r.reason);
    if (this.stopCtl.signal.aborted) return;
    const settings = activeSettings(this.pool, now);
    if (settings.schedule !== this.activeSchedule) {
      this.activeSchedule = settings.schedule;
      this.opts.logger.info(
        { executor: this.opts.tags.executor, schedule: settings.schedule ?? 'none', idleCount: settings.idleCount, idleTimeMs: settings.idleTimeMs, scaleFactor: settings.scaleFactor },
        'idle pool policy changed',
      );
    }
    const limits = { maxMachines: this.maxMachines, ...(this.pool.maxGrowthRate !== undefined && { maxGrowthRate: this.pool.maxGrowthRate }) };
    const d = decidePool(this.table.all(), this.table.creating(), settings, limits, now, this.waitingJobs);
    for (const r of d.remove) if (this.table.is(r.id, 'idle')) void this.steps.remove(r.id, r.reason);
    if (d.create > 0 && now >= this.poolRetryAt) for (let i = 0; i < d.create; i++) this.track(this.bootForPool());
  }

  /** After the pool stopped, a machine still has a use only for a job already waiting for one. */
  private get poolClosed(): boolean {
    return this.shutdownCtl.signal.aborted || (this.stopCtl.signal.aborted && this.changes.size === 0);
  }

  private poolFailed(errors: unknown[], why: string): void {
    this.poolFailures++;
    const cls = classifyFailure(errors);
    const backoff = poolRetryDelay(this.poolFailures, cls);
    this.poolRetryAt = this.opts.clock.now() + backoff;
    this.opts.logger.warn({ executor: this.opts.tags.executor, reason: why, class: cls, retryInMs: backoff }, 'could not add a machine to the idle pool');
    this.changes.wake();
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
  }

  private kick(): void {
    this.kicker.kick();
  }
}

/** Resolves when `p` settles (either way) or rejects with the signal's reason when it aborts first. */
function untilSettled(p: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    p.then(done, done);
  });
}
