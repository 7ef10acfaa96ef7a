// The machines of one executor: hand a ready machine to a job, take it back after, keep the idle pool at
// the size its policy asks for, and garbage-collect machines that carry our ownership tags but are not
// ours to keep (left by a crash or a lost release). The provider's list is the source of truth; the map
// here is only what this process started and still tracks.
//
// A machine's life here: booting (created, not yet ready) → idle (ready, its SSH connection held by the
// executor) → busy (running one job) → idle again while it has uses left, or removed. Machines created
// for a job that found no idle one go straight from booting to busy. Every state counts against
// maxMachines, so the pool can never push the executor over its cap.

import type { Clock } from '../core/clock.js';
import { errorMessage, InsufficientCapacityError } from '../core/errors.js';
import type { MachineWarmer } from '../core/executor.js';
import type { Logger } from '../core/logger.js';
import type { CapacityProvider, ConnectionInfo, Machine, OwnershipTags } from '../core/machine.js';
import { DEFAULT_POOL, type PoolConfig } from '../core/pool-config.js';
import { activeSettings, planPool } from './pool-policy.js';

export interface AcquiredMachine {
  machine: Machine;
  connection: ConnectionInfo;
}

export interface ExecutorFleetOptions {
  provider: CapacityProvider;
  tags: OwnershipTags;
  logger: Logger;
  clock: Clock;
  /** Machines in every state together never exceed this. Default: no cap (the runner's slots bound jobs). */
  maxMachines?: number;
  /** The idle pool's policy. Default: nothing idle, one job per machine. */
  pool?: PoolConfig;
  /** Opens an idle machine's SSH connection ahead of its job (the executor). */
  warmer?: MachineWarmer;
  /** Attempts to get a ready machine before the job fails as a system failure. */
  acquireAttempts?: number;
  /** Pause before retrying a failed creation (grows per attempt, at most 5×). */
  retryDelayMs?: number;
  /** A change (a job took a machine, a machine left) reconciles the pool after this pause, so a burst of
   *  changes is one reconcile and the refill does not compete with the job that just started. Default 250 ms. */
  settleMs?: number;
}

export interface FleetCounts {
  booting: number;
  idle: number;
  busy: number;
  /** Being terminated, or a terminate that failed and waits for garbage collection: still counted
   *  against maxMachines until the provider confirmed it is gone. */
  removing: number;
}

export interface ReleaseOptions {
  /** The job ended in a way that leaves the machine healthy (not a system failure, not cut off). */
  reusable?: boolean;
}

export class MachineUnavailableError extends Error {}

type Phase = 'booting' | 'idle' | 'busy' | 'leaving';

interface Tracked {
  machine: Machine;
  phase: Phase;
  /** Booting for the pool (true) or for a waiting job. */
  forPool: boolean;
  connection?: ConnectionInfo;
  uses: number;
  idleSince: number;
}

const POOL_RETRY_MIN_MS = 5_000;
const POOL_RETRY_MAX_MS = 5 * 60_000;

export class ExecutorFleet {
  private readonly tracked = new Map<string, Tracked>();
  private readonly attempts: number;
  private maxMachines: number;
  private pool: PoolConfig;
  /** The pool stops growing (the coordinator takes no more jobs); machines booting for waiting jobs finish. */
  private readonly stopCtl = new AbortController();
  /** Everything stops: boots and connections in flight are abandoned (releaseAll). */
  private readonly shutdownCtl = new AbortController();
  /** Boots and warm-ups in flight, so a shutdown can wait for them and remove what they made. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Creations asked of the provider that have not returned a machine yet (for jobs and for the pool). */
  private creating = 0;
  private creatingForPool = 0;
  /** Callers waiting for any change (a machine became idle, or one went away). */
  private waiters = new Set<() => void>();
  private poolFailures = 0;
  private poolRetryAt = 0;
  private activeSchedule: number | undefined;
  private reconciling = false;
  private kickPending = false;
  private reconcileAgain = false;

  constructor(private readonly opts: ExecutorFleetOptions) {
    this.attempts = opts.acquireAttempts ?? 3;
    this.maxMachines = opts.maxMachines ?? Number.POSITIVE_INFINITY;
    this.pool = opts.pool ?? DEFAULT_POOL;
  }

  /** A reloaded config (SIGHUP): a new cap and pool take effect at the next reconcile; machines in use
   *  are never disturbed (a lower cap is reached as jobs end and idle machines age out). */
  reconfigure(o: { maxMachines: number; pool: PoolConfig }): void {
    this.maxMachines = o.maxMachines;
    this.pool = o.pool;
    void this.reconcile().catch(() => undefined);
  }

  get machinesInUse(): number {
    return this.counts().busy;
  }

  counts(): FleetCounts {
    const c: FleetCounts = { booting: this.creating, idle: 0, busy: 0, removing: 0 };
    for (const t of this.tracked.values()) {
      if (t.phase === 'idle') c.idle++;
      else if (t.phase === 'busy') c.busy++;
      else if (t.phase === 'booting') c.booting++;
      else c.removing++;
    }
    return c;
  }

  /** A ready machine: an idle one if there is one, else a new one; MachineUnavailableError after
   *  `acquireAttempts` failed creations, with every reason joined. */
  async acquire(signal: AbortSignal, onProgress: (line: string) => void): Promise<AcquiredMachine> {
    const reasons: string[] = [];
    let attempt = 0;
    for (;;) {
      signal.throwIfAborted();
      const idle = this.takeIdle();
      if (idle) return idle;
      if (this.total() >= this.maxMachines) {
        // Every machine is busy or booting for the pool: the next one to become idle is ours.
        await this.nextChange(signal);
        continue;
      }
      attempt++;
      const got = await this.createForJob(signal, onProgress, attempt, reasons);
      if (got) return got;
      if (attempt >= this.attempts) {
        throw new MachineUnavailableError(`no machine could be made ready after ${this.attempts} attempts: ${reasons.join('; ')}`);
      }
    }
  }

  /** Takes the machine back after its job: to the idle pool while it has uses left and the job left it
   *  healthy, otherwise removed. Never throws: failures are logged and left to garbage collection. */
  async release(machine: Machine, o: ReleaseOptions = {}): Promise<void> {
    const t = this.tracked.get(machine.id);
    if (t && o.reusable && t.connection && t.uses < this.pool.maxUseCount && !this.stopCtl.signal.aborted) {
      // Back to the pool in the background: the job's final state need not wait for the connection.
      t.phase = 'booting';
      this.track(this.makeIdle(t, t.connection).then(async (why) => {
        if (why === undefined) {
          this.opts.logger.info({ executor: this.opts.tags.executor, machine: machine.id, uses: t.uses }, 'machine back in the idle pool');
          return;
        }
        this.opts.logger.warn({ executor: this.opts.tags.executor, machine: machine.id, reason: why }, 'machine could not go back to the idle pool');
        await this.remove(machine);
      }));
      return;
    }
    await this.remove(machine);
  }

  /** The machines carrying this executor's ownership tags (the coordinator tag is deployment-wide). */
  owned(): Promise<Machine[]> {
    return this.opts.provider.list(this.opts.tags);
  }

  /**
   * A machine a previous coordinator of this deployment left running: 'idle' joins the idle pool (its
   * connection opened ahead, as for a machine booted here; it is removed if that fails), 'busy' runs the
   * job found on it and comes back through release() like any other.
   */
  async adopt(machine: Machine, connection: ConnectionInfo, as: 'idle' | 'busy'): Promise<void> {
    if (this.tracked.has(machine.id)) return;
    const t: Tracked = { machine, phase: as === 'busy' ? 'busy' : 'booting', forPool: true, connection, uses: 1, idleSince: 0 };
    this.tracked.set(machine.id, t);
    const log = this.opts.logger;
    if (as === 'busy') {
      log.info({ executor: this.opts.tags.executor, machine: machine.id }, 'machine adopted with its running job');
      return;
    }
    const why = await this.makeIdle(t, connection);
    if (why === undefined) {
      log.info({ executor: this.opts.tags.executor, machine: machine.id }, 'machine adopted into the idle pool');
      return;
    }
    log.warn({ executor: this.opts.tags.executor, machine: machine.id, reason: why }, 'machine could not be adopted; removing it');
    await this.remove(machine);
  }

  /** A machine found at start that cannot be adopted: removed, with the reason in the log. */
  async discard(machine: Machine, reason: string): Promise<void> {
    this.opts.logger.warn({ executor: this.opts.tags.executor, machine: machine.id, reason }, 'removing a machine that cannot be adopted');
    this.tracked.set(machine.id, { machine, phase: 'leaving', forPool: false, uses: 0, idleSince: 0 });
    await this.remove(machine);
  }

  /**
   * Brings the pool to what its policy asks for now: boots machines up to the idle target (within
   * maxMachines and maxGrowthRate) and removes machines idle past idleTime beyond it. Runs on a timer and
   * after every change; concurrent calls fold into one.
   */
  async reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.reconcileAgain = false;
        await this.reconcileOnce();
      } while (this.reconcileAgain && !this.stopCtl.signal.aborted);
    } finally {
      this.reconciling = false;
    }
  }

  /** Stops growing the pool and removes idle machines (the coordinator stopped taking jobs). A pool
   *  machine still booting goes to a job waiting for one, or is removed once it is up. */
  async stopPool(): Promise<void> {
    if (!this.stopCtl.signal.aborted) this.stopCtl.abort(new Error('the executor is shutting down'));
    const idle = [...this.tracked.values()].filter((t) => t.phase === 'idle');
    await Promise.all(idle.map((t) => this.remove(t.machine)));
    this.wake();
  }

  /** Terminates owned machines that this process does not track (or failed to terminate) and that are
   *  older than `minAgeMs` (younger ones may still be on their way back from `create`). Returns the ids it removed. */
  async collectGarbage(minAgeMs = 0): Promise<string[]> {
    const owned = await this.opts.provider.list(this.opts.tags);
    const now = this.opts.clock.now();
    // A machine whose terminate failed is retried whatever its age: it still counts against the cap.
    const stray = owned.filter((m) => {
      if (m.state === 'terminated') return false;
      const t = this.tracked.get(m.id);
      if (t) return t.phase === 'leaving';
      return now - m.createdAt >= minAgeMs;
    });
    // Leaving machines the provider no longer lists as live are gone: stop counting them.
    const live = new Set(owned.filter((m) => m.state !== 'terminated').map((m) => m.id));
    for (const [id, t] of this.tracked) if (t.phase === 'leaving' && !live.has(id)) this.tracked.delete(id);
    if (stray.length) {
      const { errors } = await this.opts.provider.terminate(stray.map((m) => m.id));
      if (errors.length === 0) for (const m of stray) this.tracked.delete(m.id);
      this.opts.logger.info({ executor: this.opts.tags.executor, removed: stray.map((m) => m.id), errors: errors.map(errorMessage) }, 'removed stray machines');
    }
    this.wake();
    return stray.map((m) => m.id);
  }

  /** Terminates every machine this executor owns (shutdown): what the provider lists and what this process
   *  tracks, after boots in flight have returned (a launch that lands later would otherwise be missed). */
  async releaseAll(): Promise<void> {
    if (!this.stopCtl.signal.aborted) this.stopCtl.abort(new Error('the executor is shutting down'));
    if (!this.shutdownCtl.signal.aborted) this.shutdownCtl.abort(new Error('the executor is shutting down'));
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    for (const t of this.tracked.values()) if (t.connection) this.opts.warmer?.cool(t.connection);
    const ids = new Set(this.tracked.keys());
    try {
      for (const m of await this.opts.provider.list(this.opts.tags)) if (m.state !== 'terminated') ids.add(m.id);
    } catch (e) {
      this.opts.logger.error({ executor: this.opts.tags.executor, err: errorMessage(e) }, 'could not list machines at shutdown; removing the ones this process knows');
    }
    if (ids.size) {
      const { errors } = await this.opts.provider.terminate([...ids]);
      for (const e of errors) this.opts.logger.error({ err: errorMessage(e) }, 'terminate at shutdown failed');
    }
    this.tracked.clear();
    this.wake();
  }

  /** Machines that exist or are being created, in every phase: what maxMachines bounds. */
  private total(): number {
    return this.creating + this.tracked.size;
  }

  /** The machine that became idle last, marked busy; undefined when none is idle. Last in, first out: a
   *  reused machine's caches (Docker layers, the local cache) are the warmest, and the machines left
   *  waiting are the ones idle longest, which idleTime removes first when the pool shrinks. */
  private takeIdle(): AcquiredMachine | undefined {
    let newest: Tracked | undefined;
    for (const t of this.tracked.values()) if (t.phase === 'idle' && (!newest || t.idleSince > newest.idleSince)) newest = t;
    if (!newest?.connection) return undefined;
    newest.phase = 'busy';
    newest.uses++;
    this.opts.logger.debug({ executor: this.opts.tags.executor, machine: newest.machine.id }, 'machine taken from the idle pool');
    this.kick();
    return { machine: newest.machine, connection: newest.connection };
  }

  private async createForJob(signal: AbortSignal, onProgress: (line: string) => void, attempt: number, reasons: string[]): Promise<AcquiredMachine | undefined> {
    const { machine, errors } = await this.createOne(false);
    if (!machine) {
      const why = errors.map(errorMessage).join('; ') || 'the provider returned no machine';
      reasons.push(why);
      this.opts.logger.warn({ executor: this.opts.tags.executor, attempt, reason: why }, 'machine creation failed');
      onProgress(`WARNING: could not create a machine (attempt ${attempt}/${this.attempts}): ${why}`);
      this.wake();
      if (attempt < this.attempts && !errors.some((e) => e instanceof InsufficientCapacityError)) {
        await this.opts.clock.sleep((this.opts.retryDelayMs ?? 1000) * Math.min(attempt, 5), signal);
      }
      return undefined;
    }
    const t = this.tracked.get(machine.id);
    if (!t) {
      // Forgotten by a shutdown's releaseAll in between: make sure it goes.
      await this.remove(machine);
      return undefined;
    }
    try {
      const connection = await this.opts.provider.waitReady(machine, signal);
      t.connection = connection;
      t.phase = 'busy';
      this.opts.logger.info({ executor: this.opts.tags.executor, machine: machine.id }, 'machine ready');
      return { machine, connection };
    } catch (e) {
      const why = errorMessage(e);
      reasons.push(why);
      this.opts.logger.warn({ executor: this.opts.tags.executor, machine: machine.id, attempt, reason: why }, 'machine did not become ready');
      onProgress(`WARNING: machine ${machine.id} did not become ready (attempt ${attempt}/${this.attempts}): ${why}`);
      await this.remove(machine);
      signal.throwIfAborted();
      return undefined;
    }
  }

  private async reconcileOnce(): Promise<void> {
    if (this.stopCtl.signal.aborted) return;
    const now = this.opts.clock.now();
    const settings = activeSettings(this.pool, now);
    if (settings.schedule !== this.activeSchedule) {
      this.activeSchedule = settings.schedule;
      this.opts.logger.info(
        { executor: this.opts.tags.executor, schedule: settings.schedule ?? 'none', idleCount: settings.idleCount, idleTimeMs: settings.idleTimeMs, scaleFactor: settings.scaleFactor },
        'idle pool policy changed',
      );
    }
    const idle: Array<{ id: string; idleSince: number }> = [];
    let busy = 0;
    let poolBooting = this.creatingForPool;
    for (const t of this.tracked.values()) {
      if (t.phase === 'idle') idle.push({ id: t.machine.id, idleSince: t.idleSince });
      // Leaving machines still occupy capacity until they are confirmed gone.
      else if (t.phase === 'busy' || t.phase === 'leaving' || (t.phase === 'booting' && !t.forPool)) busy++;
      else if (t.phase === 'booting') poolBooting++;
    }
    // Machines being created for waiting jobs are as good as busy.
    busy += this.creating - this.creatingForPool;
    const plan = planPool(
      { idle, busy, booting: poolBooting },
      settings,
      { maxMachines: this.maxMachines, ...(this.pool.maxGrowthRate !== undefined && { maxGrowthRate: this.pool.maxGrowthRate }) },
      now,
    );
    for (const id of plan.remove) {
      const t = this.tracked.get(id);
      if (!t || t.phase !== 'idle') continue;
      this.opts.logger.info({ executor: this.opts.tags.executor, machine: id, idleMs: now - t.idleSince }, 'removing an idle machine the pool no longer needs');
      void this.remove(t.machine);
    }
    if (plan.create > 0 && now >= this.poolRetryAt) {
      for (let i = 0; i < plan.create; i++) void this.bootForPool();
    }
  }

  private bootForPool(): void {
    this.track(this.bootOne());
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** After the pool stopped, a machine still has a use only for a job already waiting for one. */
  private get poolClosed(): boolean {
    return this.shutdownCtl.signal.aborted || (this.stopCtl.signal.aborted && this.waiters.size === 0);
  }

  /** One machine from the provider, counted as being created while the call runs and tracked as booting
   *  from the same turn on (so no reconcile can see it in neither count); a provider that throws is a
   *  failed creation like one that reports errors. */
  private async createOne(forPool: boolean): Promise<{ machine?: Machine; errors: Error[] }> {
    this.creating++;
    if (forPool) this.creatingForPool++;
    try {
      const { machines, errors } = await this.opts.provider.create(1, this.opts.tags);
      const machine = machines[0];
      if (machine) this.tracked.set(machine.id, { machine, phase: 'booting', forPool, uses: forPool ? 0 : 1, idleSince: 0 });
      return { ...(machine && { machine }), errors };
    } catch (e) {
      return { errors: [e instanceof Error ? e : new Error(String(e))] };
    } finally {
      this.creating--;
      if (forPool) this.creatingForPool--;
    }
  }

  private async bootOne(): Promise<void> {
    const log = this.opts.logger;
    const { machine, errors } = await this.createOne(true);
    if (!machine) {
      this.poolFailed(errors.map(errorMessage).join('; ') || 'the provider returned no machine');
      return;
    }
    const t = this.tracked.get(machine.id);
    if (!t || this.poolClosed) {
      await this.remove(machine);
      return;
    }
    try {
      const connection = await this.opts.provider.waitReady(machine, this.shutdownCtl.signal);
      t.connection = connection;
      const why = await this.makeIdle(t, connection);
      if (why === undefined) {
        this.poolFailures = 0;
        log.info({ executor: this.opts.tags.executor, machine: machine.id }, 'machine ready and idle');
      } else {
        if (!this.poolClosed) this.poolFailed(why);
        await this.remove(machine);
      }
    } catch (e) {
      if (!this.poolClosed) this.poolFailed(`machine ${machine.id} did not become ready: ${errorMessage(e)}`);
      await this.remove(machine);
    }
  }

  /** Opens the machine's connection ahead of its next job and puts it in the idle pool; otherwise says
   *  why (the caller removes it). */
  private async makeIdle(t: Tracked, connection: ConnectionInfo): Promise<string | undefined> {
    const id = t.machine.id;
    try {
      await this.opts.warmer?.warm(
        connection,
        (reason) => {
          if (this.tracked.get(id) !== t || t.phase !== 'idle') return;
          this.opts.logger.warn({ executor: this.opts.tags.executor, machine: id, reason: errorMessage(reason) }, 'idle machine stopped answering; replacing it');
          void this.remove(t.machine).then(() => this.kick());
        },
        this.shutdownCtl.signal,
      );
    } catch (e) {
      return `could not connect to machine ${id}: ${errorMessage(e)}`;
    }
    if (this.poolClosed || this.tracked.get(id) !== t) {
      // The caller's remove() may no longer find it (releaseAll forgot it): let go of the connection here.
      this.opts.warmer?.cool(connection);
      return 'the pool stopped';
    }
    t.phase = 'idle';
    t.idleSince = this.opts.clock.now();
    this.wake();
    this.kick();
    return undefined;
  }

  private poolFailed(why: string): void {
    this.poolFailures++;
    const backoff = Math.min(POOL_RETRY_MAX_MS, POOL_RETRY_MIN_MS * 2 ** (this.poolFailures - 1));
    this.poolRetryAt = this.opts.clock.now() + backoff;
    this.opts.logger.warn({ executor: this.opts.tags.executor, reason: why, retryInMs: backoff }, 'could not add a machine to the idle pool');
    this.wake();
  }

  /** Terminates the machine and forgets it once the provider confirmed. */
  private async remove(machine: Machine): Promise<void> {
    const t = this.tracked.get(machine.id);
    if (t) {
      t.phase = 'leaving';
      if (t.connection) this.opts.warmer?.cool(t.connection);
    }
    try {
      const { errors } = await this.opts.provider.terminate([machine.id]);
      for (const e of errors) this.opts.logger.error({ machine: machine.id, err: errorMessage(e) }, 'terminate failed; garbage collection will retry');
      if (errors.length === 0) this.tracked.delete(machine.id);
    } catch (e) {
      this.opts.logger.error({ machine: machine.id, err: errorMessage(e) }, 'terminate failed; garbage collection will retry');
    }
    // A failed terminate leaves the machine tracked as leaving: it still counts against the cap, and the
    // next garbage collection tries again.
    this.wake();
    this.kick();
  }

  /** Schedules a reconcile soon (see `settleMs`), so the pool refills right after a job takes a machine. */
  private kick(): void {
    if (this.stopCtl.signal.aborted || this.kickPending) return;
    this.kickPending = true;
    const run = () => {
      this.kickPending = false;
      void this.reconcile().catch((e) => this.opts.logger.warn({ err: errorMessage(e) }, 'idle pool reconcile failed'));
    };
    const settle = this.opts.settleMs ?? 250;
    if (settle <= 0) queueMicrotask(run);
    else this.opts.clock.sleep(settle, this.stopCtl.signal).then(run, () => (this.kickPending = false));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w();
  }

  private nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(done);
        reject(signal.reason);
      };
      const done = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(done);
    });
  }
}
