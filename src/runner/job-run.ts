// One job from GitLab's 201 to its final state: acknowledge, stream the trace, get a machine, run, report,
// release. Every failure ends in a final state sent to GitLab: no job is left "running".

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Clock } from '../core/clock.js';
import { ImagePullError, errorMessage } from '../core/errors.js';
import type { Executor } from '../core/executor.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import { failed, type JobOutcome, type MachineInterruption } from '../core/outcome.js';
import type { AcquireOptions, ExecutorFleet } from '../fleet/executor-fleet.js';
import { runWithInterruptionRerun } from './interruption-rerun.js';
import type { TaskRequestDecision } from './task-request.js';
import type { JobChannel, OpenJobChannel } from './ports.js';
import { DEFAULT_TOKEN_PREFIXES } from './trace/masker.js';
import type { JobJournal, JournalEntry } from './job-journal.js';
import { JobTrace, secretsOf } from './trace/job-trace.js';
import { appendsAfter, canReattach, startingPoint, type ContinuedJob } from './continued-job.js';
import { settleHeldMachine, type HeldMachine } from './held-machine.js';
import { JobCredentialFeed, withJobCredentials, type GetJobCredentials } from './job-credentials.js';

export type { ContinuedJob } from './continued-job.js';

export interface ExecutorRuntime {
  name: string;
  executor: Executor;
  fleet: ExecutorFleet;
  /** Told when a job's machine of this executor was interrupted (the spot circuit breaker, metrics). */
  onInterrupted?: (i: MachineInterruption) => void;
  /** Set for executors whose machine is made from the job (fargate): its image, services and size. */
  taskFor?: (job: JobPayload) => TaskRequestDecision;
  /** AWS credentials for the job (`jobRole`): variables added to its payload, or a file on its machine that
   *  the executor renews (job-credentials.ts); masked in its trace either way. */
  jobCredentials?: GetJobCredentials;
}

export interface JobRunOptions {
  job: JobPayload;
  /** Undefined when no executor matches the job: it is then failed with an explanation. */
  runtime: ExecutorRuntime | undefined;
  openChannel: OpenJobChannel;
  spoolDir: string;
  outputLimitBytes: number;
  logger: Logger;
  clock: Clock;
  /** Header lines ("Running with fleetrunner …"). */
  banner: string;
  /** Extra secrets to mask in every trace (e.g. the runner token). */
  extraSecrets: readonly string[];
  /** Records the job while it runs, so a restart after a crash can report it. */
  journal?: JobJournal;
  gitlabUrl?: string;
  /** GitLab's payload for this job could not be read (field paths and problems): fail it with them. */
  unreadable?: readonly string[];
  /** Called when the job's final state has been on its way to GitLab for `slotGraceMs` (GitLab is slow or
   *  away): its slots may go to new work while the delivery goes on. */
  onExecuted?: () => void;
  /** Default DELIVERY_SLOT_GRACE_MS. */
  slotGraceMs?: number;
  /** Observer: how long getting a ready machine took (metrics). */
  onMachineAcquired?: (executor: string, ms: number) => void;
  /** The executor the job was routed to is full (or failing its checks): waits for its slot, saying so in
   *  the trace; rejects when the wait is over its bound or the job is stopped. */
  waitForSlot?: (signal: AbortSignal, say: (line: string) => void) => Promise<void>;
  /** A job a previous coordinator started, found on its machine (reattach.ts): no acknowledgement, no
   *  new machine; the session continues from the machine's records and the trace from its checkpoint. */
  continued?: ContinuedJob;
}


/** A hard abort caused by the coordinator shutting down: the executor reports it as a system failure. */
export class ShutdownAbort extends Error {
  readonly failureReason = 'runner_system_failure' as const;
}

/** GitLab answered the acknowledgement with `Job-Status: canceling`: the job is stopped before anything of
 *  its own ran (a hard abort: no after_script) and fails as canceled. */
class CanceledAtAcknowledgement extends Error {
  constructor() {
    super('canceled before it started');
  }
}

const RED = '\x1b[31;1m';
/** How long a job cut off by a shutdown may try to deliver its final state before leaving it to the next start. */
export const CUT_OFF_DELIVERY_GRACE_MS = 10_000;
/** How long a job keeps its slots while its final state is on its way to GitLab. */
export const DELIVERY_SLOT_GRACE_MS = 30_000;
const RESET = '\x1b[0;m';

export class JobRun {
  /** The continued job's machine serves the first run only (see runOnce). */
  private continuedUnused = true;
  private readonly cancelCtl = new AbortController();
  private readonly abortCtl = new AbortController();
  /** Set while the final state is being delivered: a shutdown cut-off abandons the delivery. */
  private delivering: JobChannel | undefined;
  /** Handoff to a successor (onShutdown: handoff): stages go on, this process stops following them. */
  private readonly handoffCtl = new AbortController();
  private handoffFlushed: () => void = () => undefined;
  private readonly flushed = new Promise<void>((resolve) => (this.handoffFlushed = resolve));
  private channel: JobChannel | undefined;
  private trace: JobTrace | undefined;
  /** The machine of the attempt whose result is being delivered: its records (the result) stay on it, and it
   *  stays this job's, until GitLab has taken the result (held-machine.ts). */
  private held: HeldMachine | undefined;
  /** The payload the executor gets: GitLab's, with the job's AWS credentials once it has them. */
  private job: JobPayload;
  /** The file form of the job's AWS credentials: each attempt's executor writes and renews them. */
  private credentials: JobCredentialFeed | undefined;
  /** When the first attempt reached its machine (the job's deadline counts from there). */
  private firstAttemptAt: number | undefined;
  /** Where the job is, for a handoff: before its machine runs it, running there, or ended (delivering). */
  private phase: 'starting' | 'executing' | 'ended' = 'starting';
  /** Settles once GitLab answered the acknowledgement (and a drop or cancel it said was acted on): no
   *  machine is launched and no user stage starts before (AcquireOptions and JobRunContext.confirmed). */
  private confirmed: Promise<void> | undefined;
  /** GitLab took the acknowledgement and the trace session runs: a handoff can flush it. */
  private acknowledged = false;
  readonly id: number;

  constructor(private readonly o: JobRunOptions) {
    this.id = o.job.id;
    this.firstAttemptAt = o.continued?.record.startedAt;
    this.job = o.continued?.record.job ?? o.job;
  }

  /** Stops delivering the final state (shutdown): the journal keeps it for the next start. */
  abandonDelivery(): void {
    this.delivering?.abandon();
  }

  /** Hard-stops the job (shutdown cut-off): the executor stops at once and the job fails as a system failure.
   *  A job already delivering its final state stops trying; its journal entry stays for the next start. */
  abort(reason: Error): void {
    this.abortCtl.abort(reason);
    this.delivering?.abandon();
  }

  /**
   * Hands the job to a successor (onShutdown: handoff): nothing more enters its trace, the executor stops
   * following its stages (they go on), what the trace holds goes to GitLab, then the executor records
   * the trace checkpoint on the machine. A job that has not reached its machine yet is cut off instead.
   * `signal` bounds the trace flush.
   */
  async handOff(signal: AbortSignal): Promise<void> {
    // Its result is known already: its delivery goes on (within the handoff deadline).
    if (this.phase === 'ended') return;
    if (this.phase === 'starting' || !this.channel || !this.trace || !this.acknowledged) {
      this.abort(new ShutdownAbort('the runner was shut down before the job reached its machine'));
      return;
    }
    // An executor whose stages cannot outlive the connection (the docker style): nothing to hand over.
    if (!canReattach(this.o.runtime?.executor)) {
      this.abort(new ShutdownAbort('the runner was shut down, and this executor cannot hand a running job to its successor'));
      return;
    }
    this.trace.freeze();
    this.handoffCtl.abort(new Error('handoff'));
    try {
      await this.channel.handOff?.(signal);
    } finally {
      this.handoffFlushed();
    }
  }

  async run(): Promise<JobOutcome | 'dropped' | 'handed_off'> {
    const { job, logger } = this.o;
    const log = logger.child({ job: job.id, executor: this.o.runtime?.name ?? 'none' });
    const spoolPath = join(this.o.spoolDir, `job-${job.id}-${randomBytes(4).toString('hex')}.trace`);
    const continued = this.o.continued;
    const from = continued && startingPoint(continued.record);
    const trace = new JobTrace(
      spoolPath,
      this.o.outputLimitBytes,
      {
        secrets: [...secretsOf(job), ...this.o.extraSecrets],
        tokenPrefixes: [...DEFAULT_TOKEN_PREFIXES, ...(job.features?.token_mask_prefixes ?? [])],
      },
      from ? { resumeFrom: from.checkpoint, ...(from.prefill && { prefill: from.prefill }) } : {},
    );
    this.trace = trace;
    let channel: JobChannel | undefined;
    let delivered = true;
    const startedAt = continued?.record.startedAt ?? this.o.clock.now();
    /** The executor's run, started before GitLab answered the acknowledgement. */
    let execution: Promise<JobOutcome> | undefined;
    try {
      channel = this.o.openChannel(job, trace.log, from ? { resumeFrom: from.checkpoint.bytes } : undefined);
      this.channel = channel;
      const open = channel;
      trace.storedBytes = () => open.storedBytes?.() ?? 0;
      const entry: JournalEntry = {
        jobId: job.id,
        jobToken: job.token,
        gitlabUrl: this.o.gitlabUrl ?? '',
        spoolPath,
        ...(job.features.failure_reasons && { failureReasons: job.features.failure_reasons }),
        startedAt,
      };
      // The machine's work starts at once; GitLab's answer to the acknowledgement arrives while it is
      // prepared (a round trip taken off every warm pickup). Until then no machine is launched and no user
      // stage starts (`confirmed`). A continued job was acknowledged by the coordinator that started it.
      if (!(from && appendsAfter(from.checkpoint))) trace.write(this.o.banner);
      let confirm = () => undefined as void;
      const confirmed = continued ? undefined : new Promise<void>((resolve) => (confirm = resolve));
      this.confirmed = confirmed;
      execution = this.execute(trace);
      execution.catch(() => undefined); // awaited below, on every path
      let ack: 'ok' | 'drop' | 'canceled' = 'ok';
      try {
        if (!continued) ack = await channel.acknowledge();
      } catch (e) {
        this.abortCtl.abort(new Error(`the job acknowledgement failed: ${errorMessage(e)}`));
        throw e;
      } finally {
        // Whatever GitLab answered is acted on (abort, cancel) before the stages waiting for it go on.
        if (ack === 'drop') this.abortCtl.abort(new Error('GitLab no longer wants the job'));
        if (ack === 'canceled') this.abortCtl.abort(new CanceledAtAcknowledgement());
        confirm();
      }
      if (ack === 'drop') {
        log.info({ ack }, 'job dropped at acknowledgement');
        await execution.catch(() => undefined);
        return 'dropped';
      }
      // Canceled while it was being handed out (Job-Status: canceling): stopped at once and failed as
      // canceled, as gitlab-runner does, so it does not stay "canceling" in GitLab; no user stage starts and
      // after_script does not run (nothing of the job's own ran).
      if (ack === 'canceled') log.info({}, 'job canceled at acknowledgement');
      else log.info({ project: job.job_info.project_full_path, name: job.job_info.name }, continued ? 'job continued from its machine' : 'job started');
      this.o.journal?.record(entry);
      this.acknowledged = true;
      channel.start({
        onCancel: () => {
          log.info({}, 'job canceling (graceful)');
          this.cancelCtl.abort(new Error('canceled'));
        },
        onAbort: (reason) => {
          log.info({ reason }, 'job aborted by GitLab');
          this.abortCtl.abort(new Error(reason));
        },
      });
      const outcome = await execution;
      if (this.handoffCtl.signal.aborted) {
        // The machine holds the job now: the successor continues it and delivers its result.
        log.info({}, 'job handed off to a successor');
        this.o.journal?.remove(job.id, this.o.gitlabUrl ?? '');
        return 'handed_off';
      }
      trace.flush();
      // From here the outcome is what a restart delivers: the job has ended, whatever happens to us.
      this.o.journal?.record({ ...entry, outcome });
      log.info(
        { outcome: outcome.state, reason: outcome.state === 'failed' ? outcome.reason : undefined, exitCode: outcome.state === 'failed' ? outcome.exitCode : undefined, durationS: Math.round((this.o.clock.now() - startedAt) / 100) / 10 },
        'job finished',
      );
      delivered = (await this.deliver(channel, outcome)) === 'delivered';
      return outcome;
    } catch (e) {
      // Only a bug gets here; still report the job instead of leaving it running. Its run on the machine is
      // stopped and waited for first: it holds the machine (this.held), which `finally` settles.
      log.error({ err: errorMessage(e) }, 'job run failed unexpectedly');
      if (execution) {
        this.abortCtl.abort(new Error(`the job run failed: ${errorMessage(e)}`));
        await execution.catch(() => undefined);
      }
      const outcome = failed('runner_system_failure', errorMessage(e));
      trace.write(`\n${RED}ERROR: Job failed (system failure): ${errorMessage(e)}${RESET}\n`);
      trace.flush();
      if (channel) delivered = (await this.deliver(channel, outcome).catch(() => 'pending' as const)) === 'delivered';
      return outcome;
    } finally {
      const held = this.held;
      this.held = undefined;
      if (held) await settleHeldMachine(held, this.id, delivered, log);
      if (delivered) {
        this.o.journal?.remove(job.id, this.o.gitlabUrl ?? '');
        trace.log.dispose();
      } else {
        // GitLab has not taken the final state yet: the journal entry and the spooled trace stay, and the
        // next start delivers them.
        trace.log.close();
      }
    }
  }

  private async deliver(channel: JobChannel, outcome: JobOutcome): Promise<'delivered' | 'pending'> {
    this.delivering = channel;
    // While GitLab takes the result at once (nearly always), the job keeps its slots until then, so GitLab
    // never sees more than `concurrent` jobs running. A delivery that drags on (an outage) must not hold
    // back new work once GitLab is back.
    const slotTimer = new AbortController();
    void this.o.clock.sleep(this.o.slotGraceMs ?? DELIVERY_SLOT_GRACE_MS, slotTimer.signal).then(() => this.o.onExecuted?.(), () => undefined);
    // A job cut off by a shutdown still gets a short try to report itself; past that the next start does.
    const grace = new AbortController();
    if (this.abortCtl.signal.reason instanceof ShutdownAbort) {
      void this.o.clock.sleep(CUT_OFF_DELIVERY_GRACE_MS, grace.signal).then(() => channel.abandon(), () => undefined);
    }
    try {
      return await channel.finish(outcome);
    } finally {
      slotTimer.abort();
      grace.abort();
      this.delivering = undefined;
    }
  }

  private async execute(trace: JobTrace): Promise<JobOutcome> {
    if (this.o.unreadable) {
      const why = 'the job payload GitLab sent could not be read';
      trace.write(`${RED}ERROR: Job failed (system failure): ${why}:${RESET}\n`);
      for (const problem of this.o.unreadable) trace.write(`${RED}  ${problem}${RESET}\n`);
      return failed('runner_system_failure', `${why}: ${this.o.unreadable.join('; ')}`);
    }
    if (!this.o.runtime) {
      const why = 'no executor of this runner matches the job (see executors[].match in the fleetrunner config)';
      trace.write(`${RED}ERROR: Job failed (system failure): ${why}${RESET}\n`);
      return failed('runner_system_failure', why);
    }
    const runtime = this.o.runtime;
    if (this.o.waitForSlot) {
      try {
        await this.o.waitForSlot(AbortSignal.any([this.abortCtl.signal, this.cancelCtl.signal]), (line) => trace.write(`${line}\n`));
      } catch (e) {
        if (this.abortCtl.signal.reason instanceof CanceledAtAcknowledgement) return this.canceledBeforeStart(trace);
        if (this.abortCtl.signal.aborted) return { state: 'failed', reason: 'runner_system_failure', message: abortReason(this.abortCtl.signal) };
        if (this.cancelCtl.signal.aborted) {
          trace.write(`${RED}ERROR: Job failed: canceled${RESET}\n`);
          return failed('job_canceled', 'canceled');
        }
        const why = errorMessage(e);
        trace.write(`${RED}ERROR: Job failed (system failure): ${why}${RESET}\n`);
        return failed('runner_system_failure', why);
      }
    }
    if (runtime.jobCredentials && !this.o.continued) {
      const r = await withJobCredentials(this.job, runtime.jobCredentials, trace, this.o.clock, this.o.logger);
      if ('failed' in r) return r.failed;
      this.job = r.job;
      this.credentials = r.feed;
    } else if (runtime.jobCredentials) {
      // Continued: its machine tells the executor whether the job has a credentials file to keep renewing.
      this.credentials = new JobCredentialFeed(runtime.jobCredentials, this.job, undefined);
    }
    // An interrupted machine (spot) gets the job run again once on a new one: interruption-rerun.ts.
    return runWithInterruptionRerun({
      job: this.job,
      trace,
      logger: this.o.logger.child({ executor: runtime.name }),
      attempt: (opts) => this.runOnce(runtime, trace, opts),
      stopped: () => this.abortCtl.signal.aborted,
      ...(runtime.onInterrupted && { onInterrupted: runtime.onInterrupted }),
    });
  }

  /** GitLab was canceling the job as it handed it out, and it had not reached a machine yet. */
  private canceledBeforeStart(trace: JobTrace): JobOutcome {
    trace.write(`${RED}ERROR: Job failed: canceled before it started${RESET}\n`);
    return failed('job_canceled', 'canceled');
  }

  /** Gets a machine, runs the job on it, gives the machine back. */
  private async runOnce(runtime: ExecutorRuntime, trace: JobTrace, opts: AcquireOptions): Promise<JobOutcome> {
    const { fleet, executor } = runtime;
    let acquired;
    const t0 = this.o.clock.now();
    // A job continued from an earlier coordinator is already on its machine; a run again after an
    // interruption gets a new one.
    const continued = this.continuedUnused ? this.o.continued : undefined;
    this.continuedUnused = false;
    const task = continued ? undefined : runtime.taskFor?.(this.o.job);
    if (task && !task.ok) {
      trace.write(`${RED}ERROR: Job failed: ${task.reason}${RESET}\n`);
      return failed('runner_configuration_error', task.reason);
    }
    let awsCredentials;
    try {
      awsCredentials = await this.credentials?.forAttempt(continued !== undefined);
    } catch (e) {
      const why = `could not get AWS credentials for the job: ${errorMessage(e)}`;
      trace.write(`${RED}ERROR: Job failed (system failure): ${why}${RESET}\n`);
      return failed('runner_system_failure', why);
    }
    try {
      acquired = continued
        ? { machine: continued.machine, connection: continued.connection }
        : await fleet.acquire(this.abortCtl.signal, (line) => trace.write(`${line}\n`), {
            ...opts,
            job: String(this.o.job.id),
            ...(task?.ok && { task: task.task }),
            ...(this.confirmed && { confirmed: this.confirmed }),
          });
      if (!continued) this.o.onMachineAcquired?.(runtime.name, this.o.clock.now() - t0);
    } catch (e) {
      // Canceled at the acknowledgement before a machine was taken: nothing ran.
      if (this.abortCtl.signal.reason instanceof CanceledAtAcknowledgement) return this.canceledBeforeStart(trace);
      const why = this.abortCtl.signal.aborted ? abortReason(this.abortCtl.signal) : errorMessage(e);
      if (!this.abortCtl.signal.aborted && e instanceof Error && e.cause instanceof ImagePullError) {
        trace.write(`${RED}ERROR: Job failed: failed to pull image: ${errorMessage(e.cause)}${RESET}\n`);
        return failed('image_pull_failure', errorMessage(e.cause));
      }
      trace.write(`${RED}ERROR: Job failed (system failure): ${why}${RESET}\n`);
      return failed('runner_system_failure', why);
    }
    let outcome: JobOutcome | undefined;
    let unclean = false;
    const markUnclean = (why: string) => {
      unclean = true;
      this.o.logger.warn({ job: this.o.job.id, machine: acquired.machine.id, why }, 'machine left unclean: it will not be reused');
    };
    try {
      this.phase = 'executing';
      // The first attempt's start is the job's: a run again after an interruption gets what is left.
      const startedAt = this.firstAttemptAt;
      this.firstAttemptAt ??= this.o.clock.now();
      const ctx = {
        ...(startedAt !== undefined && { startedAt }),
        job: this.job,
        trace,
        cancel: this.cancelCtl.signal,
        abort: this.abortCtl.signal,
        markUnclean,
        handoff: { signal: this.handoffCtl.signal, flushed: () => this.flushed },
        ...(this.confirmed && { confirmed: this.confirmed }),
        ...(awsCredentials && { awsCredentials }),
      };
      outcome = continued ? await continued.reattacher.reattach(acquired.connection, ctx, continued.record) : await executor.run(acquired.connection, ctx);
      if (!this.handoffCtl.signal.aborted) this.phase = 'ended';
      // A shutdown cut-off is the runner's doing, not the job's: GitLab must see a system failure.
      if (outcome.state === 'failed' && this.abortCtl.signal.reason instanceof ShutdownAbort) {
        outcome = { ...outcome, reason: 'runner_system_failure' };
      }
      return outcome;
    } finally {
      // Handed off: the machine is the successor's, with the job still running on it.
      if (!this.handoffCtl.signal.aborted) {
        // A machine goes back to the pool only after a job whose stages all ran to their own end (success or
        // a script failure) and were cleaned up after. A stopped job (cancel, timeout, abort) may have left
        // processes that escaped the kill; a system failure leaves the machine's state unknown.
        const reusable = !unclean && !this.abortCtl.signal.aborted && outcome !== undefined && (outcome.state === 'success' || outcome.reason === 'script_failure');
        const held: HeldMachine = { runtime, machine: acquired.machine, connection: acquired.connection, release: unclean ? { reusable, reason: 'unclean' } : { reusable } };
        // An interrupted attempt is not the job's result (it runs again elsewhere), and an executor that keeps no
        // records has nothing on the machine to wait for: the machine goes now.
        const keepsResult = canReattach(executor) && !(outcome?.state === 'failed' && outcome.interruption);
        if (keepsResult) this.held = held;
        else await fleet.release(held.machine, held.release);
      }
    }
  }
}

function abortReason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
}
