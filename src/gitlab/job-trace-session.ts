// One job's conversation with GitLab after the 201 (docs/gitlab-protocol.md §3, §4): the acknowledgement, periodic trace
// PATCHes with keep-alive PUTs while it runs, and the final flush + PUT. GitLab's answers steer it:
// Range moves the offset, Job-Status cancels or aborts, X-GitLab-Trace-Update-Interval sets the pace.

import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { JobPayload } from '../core/job.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { JobOutcome } from '../core/outcome.js';
import type { TraceLog } from '../core/trace.js';
import type { JobStateResponse, UpdateJobBody } from './api-types.js';
import { backoffDelayMs } from './backoff.js';
import { mapFailureReason } from './failure-reasons.js';
import type { RunnerInfo } from './info.js';
import { MAX_TRACE_PATCH_BYTES, type RunnerApi } from './runner-api.js';

export interface TraceTiming {
  /** First and final-update interval between ticks. GitLab's X-GitLab-Trace-Update-Interval replaces it. */
  initialIntervalMs: number;
  /** Cap on a server-given interval (gitlab-runner: 15 min). */
  maxIntervalMs: number;
  /** Keep-alive PUT once no PATCH/PUT succeeded for this long. */
  forceSendIntervalMs: number;
  maxPatchBytes: number;
  finalUpdateBackoffMinMs: number;
  /** Cap on the wait between two final update rounds. */
  finalUpdateBackoffMaxMs: number;
  /** 416s in a row within one final flush before that round counts as failed. */
  maxRangeMismatches: number;
}

export const DEFAULT_TRACE_TIMING: TraceTiming = {
  initialIntervalMs: 3_000,
  maxIntervalMs: 900_000,
  forceSendIntervalMs: 30_000,
  maxPatchBytes: MAX_TRACE_PATCH_BYTES,
  finalUpdateBackoffMinMs: 1_000,
  finalUpdateBackoffMaxMs: 300_000,
  maxRangeMismatches: 10,
};

/** Acknowledgement attempts when no answer comes, and the waits between them (at most 3.5 s in all). */
export const ACK_ATTEMPTS = 4;
const ACK_RETRY_BACKOFF = { minMs: 500, maxMs: 4_000, factor: 2, jitter: true };

/** The reason a tick's wait is cancelled with (abort() without one makes a DOMException, stack and all, for
 *  every tick of every job). */
const TICK_ENDED = new Error('tick ended');

/** Why GitLab took the job away: 403, 404 on PUT, or `Job-Status: canceled|failed`. */
export interface TraceAbortReason {
  cause: 'forbidden' | 'not_found' | 'canceled' | 'failed';
  status: number;
  jobStatus?: string;
}

/** running: go on. drop: GitLab no longer wants it (403/404/failed), say nothing more. canceled: it was
 *  canceled before it started; finish it as failed/job_canceled. */
export type AckResult = 'running' | 'drop' | 'canceled';

export interface FinishResult {
  /** GitLab answered 200 to the final PUT. */
  accepted: boolean;
  /** GitLab ended the job itself (403, 404, Job-Status canceled/failed): nothing more to deliver. */
  ended?: TraceAbortReason;
  /** stop() was called before GitLab took the final state: it is still to be delivered (by a successor). */
  abandoned?: boolean;
  /** Status of the last final PUT (0: no answer, undefined: none sent). */
  lastStatus?: number;
  /** Final update rounds that failed before the result. */
  failedRounds: number;
}

/** The final state reached GitLab, or GitLab no longer wants it: the job's journal entry can go. */
export function isDelivered(r: FinishResult): boolean {
  return r.accepted || r.ended !== undefined;
}

/** Worth trying again later: GitLab or the way to it is unwell, not the request. */
export function isTransientStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export interface JobTraceSessionOptions {
  api: Pick<RunnerApi, 'updateJob' | 'patchTrace'>;
  job: Pick<JobPayload, 'id' | 'token' | 'features'>;
  trace: TraceLog;
  clock: Clock;
  /** Sent on every PUT, as gitlab-runner does. */
  info?: RunnerInfo;
  debugTrace?: boolean;
  /** `Job-Status: canceling`: stop user stages, run after_script. Called at most once. */
  onCancel?: () => void;
  /** The job is gone or failed server-side: stop everything now. Called at most once, never during finish. */
  onAbort?: (reason: TraceAbortReason) => void;
  timing?: Partial<TraceTiming>;
  random?: () => number;
  logger?: Logger;
  /** A trace continued by a successor coordinator from a checkpoint: GitLab holds at least this many
   *  bytes, the log starts there, and bytes GitLab already has (its 416 Range says how many) are skipped
   *  as the log regenerates them. */
  resumeFrom?: number;
}

type PatchOutcome = 'sent' | 'nothing' | 'range' | 'not_found' | 'abort' | 'failed';

export class JobTraceSession {
  private readonly t: TraceTiming;
  private readonly logger: Logger;
  private sentOffset = 0;
  private intervalMs: number;
  private lastSentAt: number | undefined;
  private patchingStopped = false;
  private abortReason: TraceAbortReason | undefined;
  private cancelNotified = false;
  private phase: 'idle' | 'running' | 'finishing' | 'done' = 'idle';
  private loop: Promise<void> | undefined;
  /** Status of the last failed PATCH or final PUT (0: no answer). */
  private lastFailureStatus = 0;
  /** Since when PATCHes have been answered 404 (the run of them is logged once). */
  private notFoundSince: number | undefined;
  private readonly loopStop = new AbortController();
  private readonly stopAll = new AbortController();
  /** Ends the tick being waited for at once (a full piece is waiting, or the loop stops); unset between
   *  ticks. */
  private wakeTick: (() => void) | undefined;
  /** Cancels the sleep of a tick that ended early, and is then replaced: a tick that runs its whole
   *  interval (the usual one) costs one timer, with no abort and no signal of its own. (Each sleep takes
   *  its listener off this signal when it ends, as Clock.sleep promises.) */
  private tickSleep = new AbortController();
  /** Whether the log growing past a full piece ends the tick being waited for. */
  private growthEndsTick = false;

  constructor(private readonly o: JobTraceSessionOptions) {
    this.t = { ...DEFAULT_TRACE_TIMING, ...o.timing };
    this.t.maxPatchBytes = Math.min(Math.max(1, this.t.maxPatchBytes), MAX_TRACE_PATCH_BYTES);
    this.intervalMs = this.t.initialIntervalMs;
    this.logger = (o.logger ?? silentLogger).child({ job: o.job.id });
    this.sentOffset = o.resumeFrom ?? 0;
  }

  /** Bytes GitLab has confirmed storing. */
  get sentBytes(): number {
    return this.sentOffset;
  }
  get updateIntervalMs(): number {
    return this.intervalMs;
  }
  get aborted(): TraceAbortReason | undefined {
    return this.abortReason;
  }

  /**
   * PUT state=running right after the 201 (docs/gitlab-protocol.md §2.2). A PUT that got no answer at all
   * (a dropped connection, say a keep-alive socket the server closed as the request went out) is sent
   * again, up to ACK_ATTEMPTS times: the job must not run with its first call being a PATCH (check 7),
   * and with two-phase commit an acknowledgement that never arrived leaves the job assigned but pending.
   * The PUT is idempotent, so one that did arrive and is sent again changes nothing. Statuses GitLab asks
   * to retry (429, 5xx) were already retried by the transport (retry-requester.ts).
   */
  async acknowledge(): Promise<AckResult> {
    let res = await this.put({ state: 'running' });
    for (let attempt = 1; res.status === 0 && attempt < ACK_ATTEMPTS; attempt++) {
      const waitMs = backoffDelayMs(attempt - 1, ACK_RETRY_BACKOFF, this.o.random);
      this.logger.warn({ attempt, waitMs, message: res.message }, 'job acknowledgement got no answer; sending it again');
      await this.o.clock.sleep(waitMs, this.stopAll.signal);
      res = await this.put({ state: 'running' });
    }
    if (res.status === 200) this.lastSentAt = this.o.clock.now();
    // canceling: the job is failed as canceled (gitlab-runner: CancelRequested → trace.Fail(job_canceled)).
    // 403/404, or a job already canceled or failed: GitLab wants nothing more for it.
    if (res.status === 403 || res.status === 404 || res.jobStatus === 'failed' || res.jobStatus === 'canceled') return 'drop';
    if (res.jobStatus === 'canceling') return 'canceled';
    // Anything else (5xx after retries, 409, no answer): run it, as gitlab-runner does; later PATCH/PUT
    // answers abort it if GitLab really does not want it.
    if (res.status !== 200) this.logger.warn({ status: res.status, message: res.message }, 'job acknowledgement not confirmed');
    return 'running';
  }

  /** Starts the periodic ticks. */
  start(): void {
    if (this.phase !== 'idle') throw new Error(`JobTraceSession.start() in phase ${this.phase}`);
    this.phase = 'running';
    this.lastSentAt ??= this.o.clock.now();
    this.loop = this.runLoop();
  }

  /**
   * Sends every remaining byte, then the final PUT, following GitLab's answers. Resolves once GitLab
   * accepted it or ended the job itself, or stop() was called (`abandoned`: still to deliver). While GitLab
   * answers 5xx, 429, 408 or not at all, rounds are retried with a backoff capped at
   * finalUpdateBackoffMaxMs, for hours if need be: a job's result is never dropped because GitLab was away.
   */
  async finish(outcome: JobOutcome): Promise<FinishResult> {
    if (this.phase === 'finishing' || this.phase === 'done') throw new Error(`JobTraceSession.finish() in phase ${this.phase}`);
    this.phase = 'finishing';
    this.loopStop.abort();
    await this.loop;
    this.intervalMs = this.t.initialIntervalMs; // GitLab sets the pace again for the final update
    const result: FinishResult = { accepted: false, failedRounds: 0 };
    const abortedBefore = this.abortReason;
    const since = this.o.clock.now();
    try {
      for (;;) {
        const round = await this.finalRound(outcome, result);
        if (round === 'accepted') result.accepted = true;
        if (round === 'stop' && this.abortReason) result.ended = this.abortReason;
        if (round !== 'failed') break;
        result.failedRounds++;
        // A job GitLab had already ended gets at most one more PATCH and one PUT (docs/gitlab-protocol.md §3.3).
        if (abortedBefore) {
          result.ended = abortedBefore;
          break;
        }
        // Every other failure is retried: only GitLab can end a job. An answer that is not transient (a 4xx
        // GitLab should never send) is an error worth a look, but giving up would leave the job running.
        const waitMs = this.finalBackoffMs(result.failedRounds - 1);
        const transient = isTransientStatus(this.lastFailureStatus);
        this.logger[transient ? 'warn' : 'error'](
          { attempt: result.failedRounds, lastStatus: this.lastFailureStatus, waitingForS: Math.round((this.o.clock.now() - since) / 1000), nextInS: Math.round(waitMs / 1000) },
          'final job state not delivered yet; retrying',
        );
        await this.o.clock.sleep(waitMs, this.stopAll.signal);
      }
    } catch (e) {
      if (!this.stopAll.signal.aborted) throw e;
    } finally {
      this.phase = 'done';
    }
    if (!isDelivered(result)) result.abandoned = true;
    else if (result.failedRounds > 0 && isDelivered(result)) {
      this.logger.info({ rounds: result.failedRounds, waitedS: Math.round((this.o.clock.now() - since) / 1000) }, 'final job state delivered after GitLab was unavailable');
    }
    return result;
  }

  /** min·2^n capped, jittered within its upper half: waits grow steadily, and many jobs do not line up. */
  private finalBackoffMs(attempt: number): number {
    const top = backoffDelayMs(attempt, { minMs: this.t.finalUpdateBackoffMinMs, maxMs: this.t.finalUpdateBackoffMaxMs });
    return Math.round(top / 2 + (this.o.random ?? Math.random)() * (top / 2));
  }

  /**
   * Hands the job to a successor coordinator: the periodic ticks stop and every stored byte is PATCHed
   * (no final PUT), so the checkpoint written after this covers as much as possible. Resolves with the
   * bytes GitLab confirmed; the caller bounds it in time and then calls stop().
   */
  async handOff(): Promise<number> {
    this.loopStop.abort();
    await this.loop;
    if (this.phase === 'running') {
      try {
        await this.flush();
      } catch (e) {
        if (!this.stopAll.signal.aborted) this.logger.warn({ error: errorMessage(e) }, 'trace flush at handoff failed');
      }
    }
    return this.sentOffset;
  }

  /** Ends all traffic for this job now (no final update); in-flight requests are cancelled. */
  async stop(): Promise<void> {
    this.loopStop.abort();
    this.stopAll.abort(new Error('job trace session stopped'));
    if (this.phase !== 'finishing') this.phase = 'done';
    await this.loop;
  }

  /**
   * One tick per update interval. A job that writes faster than one piece per interval would leave all of
   * it to the final flush, which then PATCHes the whole backlog back to back after the job has ended; so
   * while a full piece (maxPatchBytes) or more is waiting after a PATCH went through, the next goes at
   * once, and a tick does not wait out its interval once a full piece is waiting. GitLab gets the same
   * PATCHes, in the same order, only sooner; a job that writes less than a piece per interval keeps
   * GitLab's pace (check 13).
   */
  private async runLoop(): Promise<void> {
    // The log says when it grows: a tick being waited for ends once a full piece is waiting (if it may).
    const stopWatching = this.o.trace.onGrowth?.((size) => {
      if (this.growthEndsTick && size - this.sentOffset >= this.t.maxPatchBytes) this.wakeTick?.();
    });
    const onStop = (): void => this.wakeTick?.();
    this.loopStop.signal.addEventListener('abort', onStop, { once: true });
    try {
      let backlog = false;
      // Only after a PATCH that went through (or none to send) may a full piece cut the next wait short.
      // After a failure, a 416 or GitLab's 404 the tick waits its whole interval: a full piece waiting
      // would otherwise send the next PATCH at once, again and again, against a GitLab that refuses it,
      // or (with patching stopped) end every wait at once and spin the event loop.
      let mayHurry = true;
      while (this.phase === 'running' && !this.abortReason && !this.loopStop.signal.aborted) {
        if (!backlog) {
          await this.nextTick(mayHurry && !this.patchingStopped);
          if (this.loopStop.signal.aborted) return; // finish(), handOff() or stop()
        }
        backlog = false;
        mayHurry = false;
        try {
          const outcome = await this.tick();
          backlog = outcome === 'sent' && this.o.trace.size - this.sentOffset >= this.t.maxPatchBytes;
          mayHurry = outcome === 'sent' || outcome === 'nothing';
        } catch (e) {
          if (this.stopAll.signal.aborted) return;
          this.logger.warn({ error: errorMessage(e) }, 'trace update tick failed');
        }
      }
    } finally {
      stopWatching?.();
      this.loopStop.signal.removeEventListener('abort', onStop);
    }
  }

  /** One update interval; with `hurry`, less if a full piece is waiting before it ends (or is already). */
  private nextTick(hurry: boolean): Promise<void> {
    if (hurry && this.o.trace.size - this.sentOffset >= this.t.maxPatchBytes) return Promise.resolve();
    this.growthEndsTick = hurry;
    const sleep = this.tickSleep;
    return new Promise<void>((resolve) => {
      const end = (early: boolean): void => {
        if (this.wakeTick !== wake) return;
        this.wakeTick = undefined;
        if (early) {
          sleep.abort(TICK_ENDED);
          this.tickSleep = new AbortController();
        }
        resolve();
      };
      const wake = (): void => end(true);
      this.wakeTick = wake;
      this.o.clock.sleep(this.intervalMs, sleep.signal).then(() => end(false), () => undefined);
    });
  }

  // One tick: at most one PATCH, then a keep-alive PUT if nothing succeeded for forceSendIntervalMs.
  private async tick(): Promise<PatchOutcome> {
    const p = await this.patchOnce();
    if (p !== 'sent' && p !== 'nothing') return p;
    if (this.abortReason || this.o.clock.now() - (this.lastSentAt ?? 0) <= this.t.forceSendIntervalMs) return p;
    const res = await this.put({ state: 'running', ...this.output() });
    if (this.abortFrom(res, true)) return p;
    this.cancelFrom(res);
    if (res.status === 200) this.lastSentAt = this.o.clock.now();
    return p;
  }

  private async patchOnce(): Promise<PatchOutcome> {
    const size = this.o.trace.size;
    if (this.patchingStopped || this.sentOffset >= size) return 'nothing';
    const start = this.sentOffset;
    const bytes = await this.o.trace.read(start, Math.min(this.t.maxPatchBytes, size - start));
    if (bytes.length === 0) return 'nothing';
    const res = await this.o.api.patchTrace(this.o.job.id, this.o.job.token, start, bytes, {
      debugTrace: this.o.debugTrace === true,
      signal: this.stopAll.signal,
    });
    this.applyInterval(res.updateIntervalSec);
    if (this.abortFrom(res, false)) return 'abort';
    this.cancelFrom(res);
    switch (res.status) {
      case 202:
        this.notFoundSince = undefined;
        // GitLab's Range says what it stored; equal to start+len unless it disagrees, and then it wins.
        this.sentOffset = this.offsetWithin(res.rangeEnd, start + bytes.length);
        this.lastSentAt = this.o.clock.now();
        return 'sent';
      case 416:
        this.lastSentAt = this.o.clock.now();
        if (this.o.resumeFrom !== undefined && res.rangeEnd !== undefined && Number.isSafeInteger(res.rangeEnd) && res.rangeEnd >= this.o.resumeFrom) {
          // A continued trace: GitLab's copy ends at rangeEnd; the log is regenerating the bytes up to
          // there (each line once): skip them, and PATCH again once the log has grown past it.
          this.sentOffset = res.rangeEnd;
          this.logger.info({ checkpoint: this.o.resumeFrom, stored: res.rangeEnd, local: this.o.trace.size }, 'continuing the trace where GitLab has it');
          return this.sentOffset >= this.o.trace.size ? 'nothing' : 'range';
        }
        if (res.rangeEnd !== undefined && Number.isSafeInteger(res.rangeEnd) && res.rangeEnd > this.o.trace.size) {
          // GitLab holds more than this log (a spool lost or cut short before a restart): what it has is
          // kept, there is nothing to add, and the final PUT still goes.
          this.sentOffset = this.o.trace.size;
          this.patchingStopped = true;
          this.logger.warn({ local: this.o.trace.size, stored: res.rangeEnd }, 'GitLab holds more of the trace than this log; sending no more of it');
          return 'nothing';
        }
        this.sentOffset = this.offsetWithin(res.rangeEnd, 0);
        this.logger.warn({ sent: start, stored: this.sentOffset }, 'trace range mismatch; resuming where GitLab is');
        return 'range';
      case 404:
        // Rails answers a job it no longer wants with 403; a 404 comes from the network in between (an
        // ingress during a deploy). As gitlab-runner: the same piece goes again on the next tick, and in
        // the final flush a 404 ends that flush (the final PUT tells the rest). Said once per run of them.
        if (this.notFoundSince === undefined) {
          this.notFoundSince = this.o.clock.now();
          this.logger.warn({ offset: start }, 'trace PATCH answered 404; sending it again every tick until GitLab takes it');
        }
        return 'not_found';
      default:
        this.lastFailureStatus = res.status;
        this.logger.warn({ status: res.status, message: res.message }, 'trace PATCH failed; retrying later');
        return 'failed';
    }
  }

  /** One final round: flush, PUT, and follow 202/412 until GitLab settles. */
  private async finalRound(outcome: JobOutcome, result: FinishResult): Promise<'accepted' | 'stop' | 'failed'> {
    for (;;) {
      if ((await this.flush()) === 'failed') return 'failed';
      const res = await this.put(this.finalBody(outcome));
      result.lastStatus = res.status;
      if (res.status === 200) return 'accepted';
      if (this.abortFrom(res, true)) return 'stop';
      if (res.status === 202) {
        // Accepted, but GitLab is still persisting live trace chunks: ask again after the interval.
        await this.o.clock.sleep(this.intervalMs, this.stopAll.signal);
        continue;
      }
      if (res.status === 412) {
        // Trace validation failed: GitLab wants the whole trace again.
        this.logger.warn({}, 'final update answered 412; re-sending the whole trace');
        this.sentOffset = 0;
        this.patchingStopped = false;
        await this.o.clock.sleep(this.intervalMs, this.stopAll.signal);
        continue;
      }
      this.lastFailureStatus = res.status;
      this.logger.warn({ status: res.status, message: res.message }, 'final job update failed');
      return 'failed';
    }
  }

  /** PATCHes everything not yet stored, in pieces of at most maxPatchBytes. */
  private async flush(): Promise<'ok' | 'failed'> {
    for (let mismatches = 0; ; ) {
      switch (await this.patchOnce()) {
        case 'sent':
          continue;
        case 'range':
          if (++mismatches > this.t.maxRangeMismatches) {
            this.lastFailureStatus = 416;
            return 'failed';
          }
          // GitLab may still be persisting what it has; give it one interval before resuming.
          await this.o.clock.sleep(this.intervalMs, this.stopAll.signal);
          continue;
        case 'failed':
          return 'failed';
        default:
          return 'ok'; // all sent, 404 or abort: the PUT tells the rest
      }
    }
  }

  private finalBody(outcome: JobOutcome): UpdateJobBody {
    const body: UpdateJobBody = { state: outcome.state, ...this.output() };
    if (outcome.state === 'failed') {
      body.failure_reason = mapFailureReason(outcome.reason, this.o.job.features?.failure_reasons);
      if (outcome.exitCode !== undefined && outcome.exitCode !== 0) body.exit_code = outcome.exitCode | 0; // int32, as GitLab stores it
    }
    return body;
  }

  private output(): Pick<UpdateJobBody, 'checksum' | 'output'> {
    const checksum = this.o.trace.checksum();
    if (checksum === undefined) return {};
    return { checksum, output: { checksum, bytesize: this.o.trace.size } };
  }

  private async put(body: UpdateJobBody): Promise<JobStateResponse> {
    const full = this.o.info ? { ...body, info: this.o.info } : body;
    const res = await this.o.api.updateJob(this.o.job.id, this.o.job.token, full, { signal: this.stopAll.signal });
    this.applyInterval(res.updateIntervalSec);
    return res;
  }

  /** 403 or Job-Status canceled/failed (and 404 on PUT) end the job's traffic. */
  private abortFrom(res: JobStateResponse, isPut: boolean): boolean {
    const js = res.jobStatus;
    let cause: TraceAbortReason['cause'] | undefined;
    if (js === 'canceled' || js === 'failed') cause = js;
    else if (res.status === 403) cause = 'forbidden';
    else if (isPut && res.status === 404) cause = 'not_found';
    if (!cause) return false;
    if (!this.abortReason) {
      this.abortReason = js ? { cause, status: res.status, jobStatus: js } : { cause, status: res.status };
      this.loopStop.abort();
      this.logger.info({ ...this.abortReason }, 'GitLab ended the job; stopping updates');
      if (this.phase === 'running') this.safely(() => this.o.onAbort?.(this.abortReason!));
    }
    return true;
  }

  private cancelFrom(res: JobStateResponse): void {
    if (res.jobStatus !== 'canceling' || this.cancelNotified || this.abortReason || this.phase !== 'running') return;
    this.cancelNotified = true;
    this.logger.info({}, 'GitLab is canceling the job');
    this.safely(() => this.o.onCancel?.());
  }

  private applyInterval(sec: number | undefined): void {
    if (sec !== undefined && sec > 0) this.intervalMs = Math.min(sec * 1000, this.t.maxIntervalMs);
  }

  private offsetWithin(n: number | undefined, fallback: number): number {
    return n !== undefined && Number.isSafeInteger(n) && n >= 0 && n <= this.o.trace.size ? n : fallback;
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.logger.error({ error: errorMessage(e) }, 'job trace callback failed');
    }
  }
}
