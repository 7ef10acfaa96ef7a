// The order of a job's stages and GitLab's rules between them (docs/gitlab-protocol.md §6.1–6.2), independent of how a
// stage reaches the machine: the shell style runs stages over SSH, a docker style will run them in
// containers with the same sequencing.
//
// prepare → user → after_script → on-success | on-failure → cleanup
// - a prepare failure skips user stages and after_script; on-failure stages still run;
// - after_script runs whenever user stages started, with CI_JOB_STATUS, its own timeout, within the deadline;
// - graceful cancel stops prepare/user stages only; hard abort stops everything (cleanup still runs);
// - a lost machine ends the job as runner_system_failure (unless the job had already failed on its own).

import { constants } from 'node:os';

import {
  MachineLostError,
  errorMessage,
  failed,
  success,
  type Clock,
  type JobOutcome,
  type JobPlan,
  type JobStatusForAfterScript,
  type Logger,
  type Stage,
} from '../core/index.js';
import { abortOutcome } from './job-abort.js';
import type { StageExit } from './remote-shell.js';
import type { TraceWriter } from './trace-lines.js';

/** The reason a stage's timers are cancelled with: abort() without one makes a DOMException, stack and all,
 *  for every stage of every job. */
const TIMERS_OFF = new Error('stage ended');

/** Runs one stage on the machine. Aborting `stop` kills it. Rejects with MachineLostError when the machine is gone. */
export interface StageTransport {
  runStage(stage: Stage, stop: AbortSignal, progress: StageProgress): Promise<StageExit>;
}

/** How a stage ended, as recorded on the machine before the next stage (session.json) and replayed by a
 *  successor coordinator. */
export type RecordedEnd = { name: string } & (
  | { kind: 'exited'; exitCode: number }
  | { kind: 'stopped'; by: StopKind }
  | { kind: 'system'; error: string }
);

/** Where the session is when a stage starts: its number (from 1) and how every earlier stage ended. */
export interface StageProgress {
  seq: number;
  ends: readonly RecordedEnd[];
  /** When the user stages began (ms epoch), once they have: the script timeout counts from there. */
  scriptStartedAt?: number;
  /** Set when a successor replays a stage that already ended: the transport only re-emits its output. */
  replayed?: RecordedEnd;
  /** No stage comes after this one (the clean-up): nothing needs preparing for a next. */
  last?: boolean;
}

export interface JobSessionOptions {
  plan: JobPlan;
  transport: StageTransport;
  trace: TraceWriter;
  cancel: AbortSignal;
  abort: AbortSignal;
  clock: Clock;
  /** When the job started (ms epoch): the job deadline counts from here. */
  startedAt: number;
  /** Bound for the cleanup stage, which runs even after an abort. */
  cleanupTimeoutMs: number;
  /** Bound for on-failure stages when the job deadline has already passed (so they can still upload). */
  lateStagesTimeoutMs: number;
  logger: Logger;
  /** A successor continues the session: these stages already ended (from the machine's records) and are
   *  replayed in order, so every rule between stages decides as it did the first time. */
  replay?: readonly RecordedEnd[];
  /** With `replay`: when the user stages began the first time (the script timeout is not restarted). */
  scriptStartedAt?: number;
  /** Told how every stage ended once the session is over (not when a stage was handed off or lost). */
  ended?: (ends: readonly RecordedEnd[]) => void;
  /** Settles once GitLab has answered the job's acknowledgement (JobRunContext.confirmed): the stages after
   *  the prepare stages (the user's, after_script, the final ones) wait for it; the prepare stages do not. */
  confirmed?: Promise<unknown>;
}

export type StopKind = 'abort' | 'cancel' | 'job_timeout' | 'script_timeout' | 'stage_timeout';
type StageEnd =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'stopped'; by: StopKind }
  | { kind: 'system'; error: Error };

interface Bounds {
  abort?: boolean;
  cancel?: boolean;
  timers: Array<{ at: number; kind: StopKind }>;
}

const seconds = (ms: number) => Math.round(ms / 1000);
const tookLonger = (ms: number) => `execution took longer than ${seconds(ms)} seconds`;

function signalExitCode(name: string): number {
  const n = (constants.signals as Record<string, number | undefined>)[`SIG${name}`];
  return n === undefined ? 1 : 128 + n;
}

export function runJobSession(o: JobSessionOptions): Promise<JobOutcome> {
  return new JobSession(o).run();
}

class JobSession {
  private readonly deadline: number;
  private jobError: JobOutcome | undefined;
  private status: JobStatusForAfterScript = 'success';
  private aborted = false;
  private systemError: Error | undefined;
  private readonly ends: RecordedEnd[] = [];
  private scriptStartedAt: number | undefined;

  constructor(private readonly o: JobSessionOptions) {
    this.deadline = o.startedAt + o.plan.jobTimeoutMs;
  }

  async run(): Promise<JobOutcome> {
    await this.runMain();
    if (!(this.systemError instanceof MachineLostError)) await this.runCleanup();
    const outcome = this.outcome();
    if (!(this.systemError instanceof MachineLostError)) this.o.ended?.(this.ends);
    return outcome;
  }

  private get halted(): boolean {
    return this.aborted || this.systemError !== undefined;
  }

  private async runMain(): Promise<void> {
    const { plan, clock } = this.o;
    const jobTimer = { at: this.deadline, kind: 'job_timeout' as const };
    let prepared = true;
    for (const stage of plan.prepare) {
      if (!this.record(await this.stage(stage, { abort: true, cancel: true, timers: [jobTimer] }))) {
        prepared = false;
        break;
      }
    }
    if (this.halted) return;
    // Every stage after these waits for GitLab's answer: the user's, and the final ones (which upload).
    await this.untilConfirmed();
    if (prepared) {
      const timers: Bounds['timers'] = [jobTimer];
      this.scriptStartedAt = this.o.scriptStartedAt ?? clock.now();
      if (plan.scriptTimeoutMs !== undefined) timers.push({ at: this.scriptStartedAt + plan.scriptTimeoutMs, kind: 'script_timeout' });
      for (const stage of plan.user) {
        if (!this.record(await this.stage(stage, { abort: true, cancel: true, timers }))) break;
      }
      if (this.halted) return;
      if (plan.after) await this.runAfterScript(plan.after(this.status));
      if (this.halted) return;
    }
    await this.runFinalStages();
  }

  /** Waits for GitLab's answer to the acknowledgement (a job it no longer wants is aborted or canceled by
   *  then, so its user stages never start), or for the job to be stopped. */
  private async untilConfirmed(): Promise<void> {
    const { confirmed, abort, cancel } = this.o;
    if (!confirmed || abort.aborted || cancel.aborted) return;
    let off = () => undefined as void;
    const stopped = new Promise<void>((resolve) => {
      abort.addEventListener('abort', resolve as () => void, { once: true });
      cancel.addEventListener('abort', resolve as () => void, { once: true });
      off = () => {
        abort.removeEventListener('abort', resolve as () => void);
        cancel.removeEventListener('abort', resolve as () => void);
      };
    });
    try {
      await Promise.race([confirmed.then(() => undefined, () => undefined), stopped]);
    } finally {
      off();
    }
  }

  private async runAfterScript(stage: Stage): Promise<void> {
    const now = this.o.clock.now();
    const left = this.deadline - now;
    // A replayed after_script ran the first time; the deadline may have passed since (a late successor).
    if (left <= 0 && !this.o.replay?.[this.ends.length]) {
      this.o.trace.warning('after_script skipped: the job deadline was reached');
      return;
    }
    const budget = Math.min(this.o.plan.afterScriptTimeoutMs, left);
    const cutByDeadline = left < this.o.plan.afterScriptTimeoutMs;
    const end = await this.stage(stage, {
      abort: true,
      timers: [{ at: now + budget, kind: cutByDeadline ? 'job_timeout' : 'stage_timeout' }],
    });
    const ignored = (why: string) => this.o.trace.warning(`after_script failed, but job will continue unaffected: ${why}`);
    if (end.kind === 'exited' && end.exitCode !== 0) ignored(`exit code ${end.exitCode}`);
    else if (end.kind === 'stopped' && end.by === 'stage_timeout') ignored(tookLonger(budget));
    else this.record(end);
  }

  private async runFinalStages(): Promise<void> {
    const { plan, clock } = this.o;
    const stages = this.jobError ? plan.onFailure : plan.onSuccess;
    const now = clock.now();
    const timer =
      this.deadline > now
        ? { at: this.deadline, kind: 'job_timeout' as const }
        : { at: now + this.o.lateStagesTimeoutMs, kind: 'stage_timeout' as const };
    for (const stage of stages) {
      const end = await this.stage(stage, { abort: true, timers: [timer] });
      if (end.kind === 'stopped' && end.by === 'stage_timeout') {
        this.o.trace.warning(`${stage.name}: ${tookLonger(this.o.lateStagesTimeoutMs)}`);
        return;
      }
      // Error priority: the job's own error, then the first failing stage here; later stages still run.
      if (!this.record(end) && (this.halted || (end.kind === 'stopped' && end.by === 'job_timeout'))) return;
    }
  }

  private async runCleanup(): Promise<void> {
    const timeout = this.o.cleanupTimeoutMs;
    const end = await this.stage(this.o.plan.cleanup, { timers: [{ at: this.o.clock.now() + timeout, kind: 'stage_timeout' }] }, true);
    if (end.kind === 'exited' && end.exitCode !== 0) this.o.trace.warning(`cleanup failed: exit code ${end.exitCode}`);
    else if (end.kind === 'stopped') this.o.trace.warning(`cleanup failed: ${tookLonger(timeout)}`);
    else if (end.kind === 'system') this.o.trace.warning(`cleanup failed: ${errorMessage(end.error)}`);
  }

  /** Folds a stage's end into the job state; true when the job may go on to the next stage. */
  private record(end: StageEnd): boolean {
    switch (end.kind) {
      case 'exited':
        if (end.exitCode === 0) return true;
        this.fail(failed('script_failure', `exit code ${end.exitCode}`, end.exitCode), 'failed');
        return false;
      case 'system':
        this.systemError = end.error;
        return false;
      case 'stopped':
        switch (end.by) {
          case 'abort':
            this.aborted = true;
            break;
          case 'cancel':
            this.fail(failed('job_canceled', 'canceled'), 'canceled');
            break;
          case 'job_timeout':
            this.fail(failed('job_execution_timeout', tookLonger(this.o.plan.jobTimeoutMs)), 'timedout');
            break;
          case 'script_timeout':
            this.fail(failed('job_execution_timeout', tookLonger(this.o.plan.scriptTimeoutMs ?? 0)), 'timedout');
            break;
          case 'stage_timeout':
            break;
        }
        return false;
    }
  }

  private fail(outcome: JobOutcome, status: JobStatusForAfterScript): void {
    if (this.jobError) return;
    this.jobError = outcome;
    this.status = status;
  }

  private outcome(): JobOutcome {
    if (this.aborted) return abortOutcome(this.o.abort.reason);
    if (this.systemError) {
      const msg = errorMessage(this.systemError);
      if (this.jobError) {
        this.o.trace.warning(msg);
        return this.jobError;
      }
      return failed('runner_system_failure', msg);
    }
    return this.jobError ?? success;
  }

  private scriptStart(): { scriptStartedAt?: number } {
    return this.scriptStartedAt === undefined ? {} : { scriptStartedAt: this.scriptStartedAt };
  }

  /** Runs one stage (or replays one that already ended) and records how it ended. */
  private async stage(stage: Stage, bounds: Bounds, last = false): Promise<StageEnd> {
    const seq = this.ends.length + 1;
    const recorded = this.o.replay?.[seq - 1];
    const end = recorded ? await this.replayStage(stage, seq, recorded) : await this.runStage(stage, bounds, seq, last);
    this.ends.push(recordEnd(stage.name, end));
    return end;
  }

  private async replayStage(stage: Stage, seq: number, recorded: RecordedEnd): Promise<StageEnd> {
    if (recorded.name !== stage.name) {
      return { kind: 'system', error: new Error(`cannot continue the job: stage ${seq} was ${recorded.name} on the machine but is ${stage.name} now`) };
    }
    try {
      await this.o.transport.runStage(stage, new AbortController().signal, { seq, ends: [...this.ends], replayed: recorded, ...this.scriptStart() });
    } catch (e) {
      return { kind: 'system', error: e instanceof Error ? e : new Error(String(e)) };
    }
    return recorded.kind === 'system' ? { kind: 'system', error: new Error(recorded.error) } : recorded;
  }

  /** Runs one stage, stopped by whichever bound comes first. (Its section header is the script's own.) */
  private async runStage(stage: Stage, bounds: Bounds, seq: number, last: boolean): Promise<StageEnd> {
    const { clock, transport } = this.o;
    const ctl = new AbortController();
    const timersOff = new AbortController();
    let by: StopKind | undefined;
    const stop = (kind: StopKind) => {
      if (by) return;
      by = kind;
      ctl.abort(kind);
    };
    const onAbort = () => stop('abort');
    const onCancel = () => stop('cancel');
    if (bounds.abort) {
      if (this.o.abort.aborted) stop('abort');
      this.o.abort.addEventListener('abort', onAbort);
    }
    if (bounds.cancel) {
      if (this.o.cancel.aborted) stop('cancel');
      this.o.cancel.addEventListener('abort', onCancel);
    }
    for (const t of bounds.timers) {
      const ms = t.at - clock.now();
      if (ms <= 0) stop(t.kind);
      else clock.sleep(ms, timersOff.signal).then(() => stop(t.kind), () => undefined);
    }
    try {
      if (by) return { kind: 'stopped', by };
      const exit = await transport.runStage(stage, ctl.signal, { seq, ends: [...this.ends], ...this.scriptStart(), ...(last && { last }) });
      if (by) return { kind: 'stopped', by };
      if ('exitCode' in exit) return { kind: 'exited', exitCode: exit.exitCode };
      return { kind: 'exited', exitCode: signalExitCode(exit.signal) };
    } catch (e) {
      this.o.logger.warn({ stage: stage.name, err: errorMessage(e) }, 'stage could not run');
      return { kind: 'system', error: e instanceof Error ? e : new Error(String(e)) };
    } finally {
      timersOff.abort(TIMERS_OFF);
      this.o.abort.removeEventListener('abort', onAbort);
      this.o.cancel.removeEventListener('abort', onCancel);
    }
  }
}

function recordEnd(name: string, end: StageEnd): RecordedEnd {
  switch (end.kind) {
    case 'exited':
      return { name, kind: 'exited', exitCode: end.exitCode };
    case 'stopped':
      return { name, kind: 'stopped', by: end.by };
    case 'system':
      return { name, kind: 'system', error: errorMessage(end.error) };
  }
}
