// The frame every execution style shares: a TraceWriter, the final "Job succeeded" / "ERROR: Job failed"
// line, a log line, and the promise that run() never throws (anything unexpected is a system failure).

import { errorMessage, failed, type Clock, type ConnectionInfo, type JobOutcome, type JobRunContext, type Logger } from '../core/index.js';
import { TraceWriter } from './trace-lines.js';

export type JobBody = (trace: TraceWriter, startedAt: number, log: Logger) => Promise<JobOutcome>;

export async function guardedRun(machine: ConnectionInfo, ctx: JobRunContext, clock: Clock, logger: Logger, body: JobBody): Promise<JobOutcome> {
  const startedAt = ctx.startedAt ?? clock.now();
  const log = logger.child({ job: ctx.job.id, machine: `${machine.host}:${machine.port}` });
  const trace = new TraceWriter(ctx.trace, clock);
  try {
    const outcome = await body(trace, startedAt, log);
    // Handed to a successor: the job goes on, and its last lines are the successor's to write.
    if (ctx.handoff?.signal.aborted) return outcome;
    // An interrupted job is not over yet: the runner runs it again or fails it, and says so.
    if (outcome.state === 'failed' && outcome.interruption) trace.warning(`${outcome.message ?? 'the machine was interrupted'}: the job's stages were stopped`);
    else trace.outcome(outcome);
    log.debug({ state: outcome.state, reason: outcome.state === 'failed' ? outcome.reason : undefined }, 'executor finished the job');
    return outcome;
  } catch (e) {
    log.error({ err: errorMessage(e) }, 'executor failed');
    const outcome = failed('runner_system_failure', errorMessage(e));
    trace.outcome(outcome);
    return outcome;
  } finally {
    // A handoff flushes nothing: the masker's tail may be the start of a secret, and the successor
    // regenerates it from the machine.
    if (!ctx.handoff?.signal.aborted) ctx.trace.flush();
  }
}
