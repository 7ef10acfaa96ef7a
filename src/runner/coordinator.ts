// The job loop: reserve room, ask GitLab for a job, route it, run it; on stop, drain within a deadline.

import { setMaxListeners } from 'node:events';

import { childAbort } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import type { RoutingRules } from '../config/index.js';
import { SlotPool } from '../fleet/slots.js';
import type { JobJournal } from './job-journal.js';
import { CUT_OFF_DELIVERY_GRACE_MS, JobRun, ShutdownAbort, type ContinuedJob, type ExecutorRuntime } from './job-run.js';
import type { LoopWait } from './loop-liveness.js';
import type { JobFeed, MaintenanceTask, OpenJobChannel } from './ports.js';
import { describeRoute, route } from './routing.js';
import { resolveLanes, type Lane, type RunnerLane } from './runner-lanes.js';

type PauseReason = Extract<LoopWait, { kind: 'pausing' }>['why'];

export type { RunnerLane };

/** A job routed to an executor that is full (or failing its checks) waits this long at most for it. */
export const SLOT_WAIT_MAX_MS = 60 * 60_000;
/** How often a waiting job looks again at an executor's checks (its slots wake it at once). */
const SLOT_WAIT_POLL_MS = 5_000;

export interface CoordinatorExecutor extends ExecutorRuntime {
  maxMachines: number;
  match?: RoutingRules;
  /** Preflight: an executor whose checks fail takes no jobs (rather than failing the jobs routed to it). */
  gate?: { readonly available: boolean };
}

export interface CoordinatorOptions {
  concurrent: number;
  /** Job requests in flight at once (gitlab-runner's request_concurrency; default 1). Each one holds the
   *  slots it reserved while it waits, so the caps stay exact. */
  requestConcurrency?: number;
  checkIntervalMs: number;
  shutdownTimeoutMs: number;
  outputLimitBytes: number;
  spoolDir: string;
  executors: readonly CoordinatorExecutor[];
  /** The runner when there is one (every executor is its): the coordinator asks this feed for jobs. */
  feed?: JobFeed;
  /** Several runners (config `runners:`), each with its own requesters over its own executors, so a full
   *  executor of one never stops another from taking jobs; `concurrent` still caps them all together. */
  runners?: readonly RunnerLane[];
  openChannel: OpenJobChannel;
  maintenance?: readonly MaintenanceTask[];
  clock: Clock;
  logger: Logger;
  /** The trace's first lines: `route` says which executor was chosen and by which rule, `runner` which
   *  runner took the job (undefined for a job continued from its machine). */
  banner: (job: JobPayload, executor: string, route?: string, runner?: string) => string;
  /** Longest wait of a job for a slot on the executor it was routed to (default SLOT_WAIT_MAX_MS). */
  slotWaitMaxMs?: number;
  /** Secrets to mask in every trace, read when each job starts (the runner token may rotate). */
  extraSecrets?: () => readonly string[];
  journal?: JobJournal;
  gitlabUrl?: string;
  /** How long a job keeps its slots while GitLab has not taken its final state (default 30 s). */
  deliverySlotGraceMs?: number;
  /** Observers for metrics. */
  onJobFinished?: (executor: string, outcome: string) => void;
  onMachineAcquired?: (executor: string, ms: number) => void;
  /** Observer: a requester of the loop (`<runner>#<n>`) enters a wait (liveness, see loop-liveness.ts). */
  onLoopWait?: (wait: LoopWait, requester: string) => void;
  /** The fleet's lease: no job request is sent unless it is held (checked right before each request). */
  lease?: { held(): boolean };
  /** What a stop does with running jobs: 'drain' lets them finish (shutdownTimeout); 'handoff' leaves
   *  them running on their machines for a successor, within handoffTimeoutMs. Default 'drain'. */
  onShutdown?: 'drain' | 'handoff';
  handoffTimeoutMs?: number;
}

interface Slots {
  executors: Map<string, SlotPool>;
}

export class Coordinator {
  private readonly global: SlotPool;
  private readonly perExecutor = new Map<string, SlotPool>();
  /** Per runner lane, when its requesters may next ask GitLab and why they wait until then: gitlab-runner's
   *  feeder hands each runner to its workers once per checkInterval, so however many requests it may have
   *  in flight (request_concurrency), a runner with no job waiting asks once an interval. */
  private readonly nextRequestAt = new Map<Lane, number>();
  private readonly waitReason = new Map<Lane, PauseReason>();
  private readonly lanes: readonly Lane[];
  /** Jobs from their 201 until GitLab took their final state; `executed` resolves once the job has run. */
  private readonly running = new Map<number, { run: JobRun; done: Promise<void>; executed: Promise<void> }>();
  private readonly stopCtl = new AbortController();
  /** Requesters waiting for room; every change of capacity wakes them all (reserve() decides who gets it). */
  private readonly capacityWaiters = new Set<() => void>();
  private cutOff = false;
  /** Stopped by standDown(): the next stop() is still the first (graceful) one. */
  private stoodDown = false;
  /** The stop handed running jobs and idle machines to a successor (see onShutdown). */
  private handingOff = false;

  constructor(private readonly o: CoordinatorOptions) {
    this.global = new SlotPool(o.concurrent);
    for (const e of o.executors) this.perExecutor.set(e.name, new SlotPool(e.maxMachines));
    this.lanes = resolveLanes(o);
  }

  get runningJobs(): number {
    return this.running.size;
  }

  /** True once a stop handed the fleet to a successor: its machines must be left as they are. */
  get handedOff(): boolean {
    return this.handingOff;
  }

  /** A reloaded config (SIGHUP): capacity and routing change for the jobs asked for from now on; running
   *  jobs keep their slots and machines. */
  reconfigure(o: { concurrent: number; executors: ReadonlyArray<{ name: string; maxMachines: number; match?: RoutingRules }> }): void {
    this.global.resize(o.concurrent);
    for (const next of o.executors) {
      const e = this.o.executors.find((x) => x.name === next.name);
      if (!e) continue;
      this.perExecutor.get(e.name)?.resize(next.maxMachines);
      e.maxMachines = next.maxMachines;
      if (next.match) e.match = next.match;
      else delete e.match;
    }
    this.capacityChanged();
  }

  private capacityChanged(): void {
    for (const wake of [...this.capacityWaiters]) wake();
  }

  /** Something outside the slots changed (an executor's gate opened): look for room again. */
  wake(): void {
    this.capacityChanged();
  }

  /** Asks the loop to stop taking jobs; `run()` then drains and resolves. A second call cuts jobs off now. */
  stop(): void {
    if (this.stoodDown) {
      this.stoodDown = false;
      this.o.logger.info({ running: this.running.size }, 'stopping: already taking no new jobs, waiting for running jobs');
      return;
    }
    if (this.stopCtl.signal.aborted) {
      // Handing off: the jobs are the successor's; stopping them now would lose them.
      if (this.handingOff) this.o.logger.info({}, 'already handing off: running jobs are left to the successor');
      else this.cutOffJobs('the runner was stopped a second time');
      return;
    }
    if (this.o.onShutdown === 'handoff') {
      this.handingOff = true;
      this.o.logger.info({ running: this.running.size }, 'stopping: no new jobs, handing running jobs and idle machines to a successor');
    } else {
      this.o.logger.info({ running: this.running.size }, 'stopping: no new jobs, waiting for running jobs');
    }
    this.stopCtl.abort(new Error('stopping'));
  }

  /** Stops taking jobs at once (the fleet's lease was lost) and drains as a first stop() does, without ever
   *  cutting running jobs off; a stop() afterwards still counts as the first. False if already stopping. */
  standDown(why: string): boolean {
    if (this.stopCtl.signal.aborted) return false;
    this.stoodDown = true;
    this.o.logger.warn({ running: this.running.size, why }, 'standing down: no new jobs, waiting for running jobs');
    this.stopCtl.abort(new Error(why));
    return true;
  }

  async run(): Promise<void> {
    const maintenance = this.startMaintenance();
    try {
      await this.loop();
    } finally {
      maintenance();
    }
    if (this.handingOff) return this.handOffAll();
    // No new jobs: idle machines have nothing left to wait for.
    await Promise.all(this.o.executors.map((e) => e.fleet.stopPool().catch((err) => this.o.logger.warn({ executor: e.name, err: errorMessage(err) }, 'could not empty the idle pool'))));
    await this.drain();
  }

  /** `requestConcurrency` requesters, each one request at a time: a job handed out starts at once, and the
   *  next request does not wait for the one before it (GitLab's long poll can hold a request ~50 s). */
  private async loop(): Promise<void> {
    const count = (lane: Lane) => Math.max(1, Math.min(lane.requestConcurrency, this.o.concurrent));
    const n = this.lanes.reduce((sum, lane) => sum + count(lane), 0);
    // Each requester listens on the stop signal while it waits (for room, a pause or its request).
    setMaxListeners(10 + 3 * n, this.stopCtl.signal);
    await Promise.all(this.lanes.flatMap((lane) => Array.from({ length: count(lane) }, (_, i) => this.requester(lane, `${lane.name}#${i + 1}`))));
  }

  private async requester(lane: Lane, me: string): Promise<void> {
    const stop = this.stopCtl.signal;
    // Set when this requester's last request brought a job: GitLab's queue may hold more, so it asks again
    // at once (gitlab-runner requeues the runner the same way), without waiting for the lane's turn.
    let hadJob = false;
    while (!stop.aborted) {
      // The lane's pace (nextRequestAt): one request per checkInterval among its requesters, unless the
      // last one brought a job.
      const wait = hadJob ? 0 : (this.nextRequestAt.get(lane) ?? 0) - this.o.clock.now();
      if (wait > 0) {
        await this.pause(wait, this.waitReason.get(lane) ?? 'no_job', me);
        continue;
      }
      const reserved = this.reserve(lane);
      if (!reserved) {
        // No room: the ask-again-at-once after a job is dropped (gitlab-runner drops a requeue when its
        // limit is met); once there is room, the lane's pace decides.
        hadJob = false;
        this.o.onLoopWait?.({ kind: 'waiting_for_capacity' }, me);
        await this.waitForCapacity(stop);
        continue;
      }
      if (this.o.lease && !this.o.lease.held()) {
        // Checked here, not only when the lease keeper says so: a process that was paused must not ask first.
        this.giveBack(reserved, undefined);
        this.standDown('the lease is not held');
        break;
      }
      let outcome;
      const askedAt = this.o.clock.now();
      // Claimed before asking, so the lane's other requesters wait their turn while this one is out.
      if (!hadJob) this.paceLane(lane, askedAt + this.o.checkIntervalMs, 'no_job');
      hadJob = false;
      this.o.onLoopWait?.({ kind: 'requesting' }, me);
      try {
        outcome = await lane.feed.requestJob(stop);
      } catch (e) {
        outcome = stop.aborted ? ({ kind: 'none', longPolled: true } as const) : ({ kind: 'error', message: errorMessage(e) } as const);
      }
      if (outcome.kind === 'job') {
        hadJob = true;
        this.startJob(outcome.job, reserved, outcome.unreadable, undefined, lane);
        continue;
      }
      this.giveBack(reserved, undefined);
      if (stop.aborted) break;
      // "No job": at most one request per checkInterval, long-polled or not (Workhorse marks even the
      // 204s it gives at once with `Gitlab-Ci-Builds-Polling: yes`, and a request held for its ~50 s has
      // already waited longer). A request made at once after a job claimed no turn: its answer paces the
      // lane from when it was sent (a no-op for one that claimed).
      if (outcome.kind === 'none') {
        this.paceLane(lane, askedAt + this.o.checkIntervalMs, 'no_job');
      } else if (outcome.kind === 'paused') {
        this.o.logger.warn({ runner: lane.name, reason: outcome.reason, retryInMs: outcome.retryInMs }, 'not asking GitLab for jobs for a while');
        this.paceLane(lane, this.o.clock.now() + outcome.retryInMs, 'gitlab_paused');
      } else if (outcome.kind === 'error') {
        this.o.logger.warn({ runner: lane.name, err: outcome.message }, 'job request failed');
        this.paceLane(lane, this.o.clock.now() + this.o.checkIntervalMs, 'request_failed');
      }
    }
    this.o.onLoopWait?.({ kind: 'stopped' }, me);
  }

  /** A global slot, asked for while any executor of the lane has room and passes its checks: the job's route
   *  is known only once GitLab hands it out, and a job routed to a full executor waits for its slot (waitForSlot). */
  private reserve(lane: Lane): Slots | undefined {
    if (this.global.free <= 0) return undefined;
    const room = lane.executors.some((e) => (e.gate === undefined || e.gate.available) && (this.perExecutor.get(e.name)?.free ?? 0) > 0);
    if (!room) return undefined;
    this.global.tryTake();
    return { executors: new Map() };
  }

  /** Gives the reserved global slot back (no job came). */
  private giveBack(slots: Slots, keep: string | undefined): void {
    for (const [name, pool] of slots.executors) if (name !== keep) pool.give();
    slots.executors.clear();
    if (keep === undefined) this.global.give();
    this.capacityChanged();
  }

  /** Waits until the executor has a slot and passes its checks, then takes the slot; bounded by slotWaitMaxMs.
   *  Each wait is said in the trace and the log. */
  private async waitForSlot(runtime: CoordinatorExecutor, jobId: number, signal: AbortSignal, say: (line: string) => void): Promise<void> {
    const pool = this.perExecutor.get(runtime.name)!;
    const open = () => runtime.gate === undefined || runtime.gate.available;
    if (open() && pool.tryTake()) return;
    const maxMs = this.o.slotWaitMaxMs ?? SLOT_WAIT_MAX_MS;
    const why = open() ? `all ${pool.capacity} of its slots are in use` : 'it is failing its checks (see fleetrunner verify)';
    say(`Waiting for executor "${runtime.name}": ${why} (up to ${Math.round(maxMs / 60_000)} min)`);
    this.o.logger.info({ job: jobId, executor: runtime.name, why }, 'job waits for its executor');
    const t0 = this.o.clock.now();
    for (;;) {
      const left = maxMs - (this.o.clock.now() - t0);
      if (left <= 0) throw new Error(`executor "${runtime.name}" had no free slot for ${Math.round(maxMs / 60_000)} min (${why})`);
      const tick = childAbort(signal);
      await Promise.race([pool.whenFree(tick.signal).catch(() => undefined), this.o.clock.sleep(Math.min(left, SLOT_WAIT_POLL_MS), tick.signal).catch(() => undefined)]);
      tick.release();
      tick.abort();
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('stopped while waiting for a slot');
      if (open() && pool.tryTake()) {
        say(`Executor "${runtime.name}" has a free slot after ${Math.round((this.o.clock.now() - t0) / 1000)} s`);
        return;
      }
    }
  }

  /**
   * A job a previous coordinator started, found on its machine: it runs beside the loop and holds its
   * slots (even past the caps: it is running already), so no more jobs are asked for than there is room.
   */
  continueJob(executor: string, job: JobPayload, continued: ContinuedJob): void {
    const runtime = this.o.executors.find((e) => e.name === executor);
    if (!runtime) throw new Error(`no executor named ${executor}`);
    this.global.take();
    this.perExecutor.get(executor)!.take();
    this.startJob(job, { executors: new Map() }, undefined, { runtime, continued });
  }

  private startJob(job: JobPayload, slots: Slots, unreadable: string[] | undefined, resumed?: { runtime: CoordinatorExecutor; continued: ContinuedJob }, lane?: Lane): void {
    // A payload that could not be read goes nowhere: the job is failed with the problems in its trace.
    const runtime = resumed?.runtime ?? (unreadable ? undefined : route(lane?.executors ?? this.o.executors, job));
    if (!runtime && !unreadable) this.o.logger.error({ job: job.id, runner: lane?.name }, 'no executor matches this job');
    // The global slot stays the job's; the chosen executor's is taken now, or waited for (waitForSlot).
    if (!resumed) this.giveBack(slots, runtime?.name ?? '');
    let executorSlot = resumed !== undefined;
    if (!resumed && runtime) executorSlot = (runtime.gate === undefined || runtime.gate.available) && this.perExecutor.get(runtime.name)!.tryTake();
    const waitForSlot =
      runtime && !executorSlot
        ? async (signal: AbortSignal, say: (line: string) => void) => {
            await this.waitForSlot(runtime, job.id, signal, say);
            executorSlot = true;
          }
        : undefined;
    const run = new JobRun({
      job,
      runtime,
      openChannel: this.o.openChannel,
      spoolDir: this.o.spoolDir,
      outputLimitBytes: this.o.outputLimitBytes,
      logger: this.o.logger,
      clock: this.o.clock,
      banner: this.o.banner(job, runtime?.name ?? 'none', runtime && !resumed ? describeRoute(runtime) : undefined, lane?.name),
      ...(waitForSlot && { waitForSlot }),
      ...(unreadable && { unreadable }),
      extraSecrets: this.o.extraSecrets?.() ?? [],
      ...(this.o.journal && { journal: this.o.journal, gitlabUrl: this.o.gitlabUrl ?? '' }),
      ...(this.o.onMachineAcquired && { onMachineAcquired: this.o.onMachineAcquired }),
      onExecuted: () => releaseSlots(),
      ...(resumed && { continued: resumed.continued }),
      ...(this.o.deliverySlotGraceMs !== undefined && { slotGraceMs: this.o.deliverySlotGraceMs }),
    });
    // The slots go back when the job ends, or earlier when its result has been on its way to GitLab for
    // a while (an outage): that delivery needs no machine and must not hold back new work.
    let slotsHeld = true;
    let markExecuted: () => void = () => undefined;
    const executed = new Promise<void>((resolve) => (markExecuted = resolve));
    const releaseSlots = () => {
      markExecuted();
      if (!slotsHeld) return;
      slotsHeld = false;
      if (runtime && executorSlot) this.perExecutor.get(runtime.name)!.give();
      this.global.give();
      this.capacityChanged();
    };
    if (this.cutOff) run.abort(new ShutdownAbort('the runner is shutting down'));
    const executor = runtime?.name ?? 'none';
    const done = run
      .run()
      .then((outcome) => this.o.onJobFinished?.(executor, outcome === 'dropped' || outcome === 'handed_off' ? outcome : outcome.state === 'success' ? 'success' : outcome.reason))
      .catch((e) => this.o.logger.error({ job: job.id, err: errorMessage(e) }, 'job crashed'))
      .finally(() => {
        this.running.delete(job.id);
        releaseSlots();
      });
    this.running.set(job.id, { run, done, executed });
  }

  /** Running jobs get shutdownTimeout to finish; results still on their way to GitLab then get a short
   *  grace, and what is left stays in the journal for the next start. */
  private async drain(): Promise<void> {
    if (this.running.size === 0) return;
    const runs = () => [...this.running.values()];
    const within = async (ms: number, work: Promise<unknown>): Promise<boolean> => {
      const timer = new AbortController();
      const deadline = this.o.clock.sleep(ms, timer.signal).then(
        () => false,
        () => true,
      );
      const ok = await Promise.race([work.then(() => true), deadline]);
      timer.abort();
      return ok;
    };
    if (!(await within(this.o.shutdownTimeoutMs, Promise.all(runs().map((r) => r.executed))))) {
      this.cutOffJobs(`shutdownTimeout (${Math.round(this.o.shutdownTimeoutMs / 1000)}s) elapsed`);
    }
    if (!(await within(CUT_OFF_DELIVERY_GRACE_MS, Promise.all(runs().map((r) => r.done))))) {
      for (const { run } of runs()) run.abandonDelivery();
    }
    await Promise.all(runs().map((r) => r.done));
  }

  /** Handoff: every running job is left to the successor (its trace flushed and checkpointed) within
   *  handoffTimeoutMs; deliveries still going on then stay journaled. Idle machines are left as they are. */
  private async handOffAll(): Promise<void> {
    const timeoutMs = this.o.handoffTimeoutMs ?? 30_000;
    const timer = new AbortController();
    const deadline = AbortSignal.any([timer.signal]);
    const elapsed = this.o.clock.sleep(timeoutMs, timer.signal).then(
      () => true,
      () => false,
    );
    void elapsed.then((e) => e && timer.abort(new Error('handoffTimeout elapsed')));
    const runs = [...this.running.values()];
    this.o.logger.info({ jobs: runs.length, timeoutS: Math.round(timeoutMs / 1000) }, 'handing off running jobs');
    await Promise.all(runs.map(({ run }) => run.handOff(deadline).catch((e) => this.o.logger.warn({ job: run.id, err: errorMessage(e) }, 'handoff failed'))));
    const all = Promise.all(runs.map((r) => r.done)).then(() => true);
    if (!(await Promise.race([all, elapsed.then(() => false)]))) {
      this.o.logger.warn({}, 'handoffTimeout elapsed: leaving what is left to the successor');
      for (const { run } of this.running.values()) run.abandonDelivery();
    }
    timer.abort();
  }

  private cutOffJobs(why: string): void {
    this.cutOff = true;
    for (const { run } of this.running.values()) {
      this.o.logger.warn({ job: run.id, why }, 'cutting off running job');
      run.abort(new ShutdownAbort(`the runner was shut down before the job finished (${why})`));
    }
  }

  private async waitForCapacity(stop: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = () => {
        stop.removeEventListener('abort', done);
        this.capacityWaiters.delete(done);
        resolve();
      };
      this.capacityWaiters.add(done);
      stop.addEventListener('abort', done, { once: true });
    });
  }

  /** The lane asks no sooner than `at` (a later time already set stays). */
  private paceLane(lane: Lane, at: number, why: PauseReason): void {
    if (at < (this.nextRequestAt.get(lane) ?? 0)) return;
    this.nextRequestAt.set(lane, at);
    this.waitReason.set(lane, why);
  }

  private async pause(ms: number, why: PauseReason, me: string): Promise<void> {
    this.o.onLoopWait?.({ kind: 'pausing', ms, why }, me);
    await this.o.clock.sleep(ms, this.stopCtl.signal).catch(() => undefined);
  }

  private startMaintenance(): () => void {
    const ctl = new AbortController();
    for (const task of this.o.maintenance ?? []) {
      void (async () => {
        while (!ctl.signal.aborted) {
          try {
            await task.run();
          } catch (e) {
            this.o.logger.warn({ task: task.name, err: errorMessage(e) }, 'maintenance task failed');
          }
          await this.o.clock.sleep(task.everyMs, ctl.signal).catch(() => undefined);
        }
      })();
    }
    return () => ctl.abort();
  }
}

