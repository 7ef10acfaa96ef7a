// A job whose machine was interrupted (a spot notice, read by the executor's machine watch) runs again,
// once, from the start, on a new on-demand machine, within the same GitLab job: its token is still valid
// and GitLab never learns of the first machine except through the trace. The interrupted machine is
// removed by the attempt's own release (an interrupted outcome is a system failure, never reusable).
//
// Decisions, each with a named reason in the log line:
// - `rerun`: first interruption, the job allows it → second attempt with market on-demand;
// - `opted_out`: the job set FLEETRUNNER_RETRY_ON_INTERRUPTION to "false" → runner_system_failure;
// - `stopped`: the job was aborted (GitLab, shutdown) while interrupted → runner_system_failure;
// - `interrupted_again`: the rerun was interrupted too → runner_system_failure (never a third run).

import { describeInterruption, failed, type JobOutcome, type MachineInterruption } from '../core/outcome.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import type { AcquireOptions } from '../fleet/executor-fleet.js';

export const RETRY_ON_INTERRUPTION_VARIABLE = 'FLEETRUNNER_RETRY_ON_INTERRUPTION';

const RED = '\x1b[31;1m';
const YELLOW = '\x1b[0;33m';
const RESET = '\x1b[0;m';

/** On unless the job sets the variable to "false" (any case; the last definition wins, as in routing). */
export function retryOnInterruption(job: JobPayload): boolean {
  const last = job.variables.filter((v) => v.key === RETRY_ON_INTERRUPTION_VARIABLE).pop();
  return last === undefined || last.value.trim().toLowerCase() !== 'false';
}

export type RerunReason = 'rerun' | 'opted_out' | 'stopped' | 'interrupted_again';

export interface InterruptionRerunOptions {
  job: JobPayload;
  trace: { write(chunk: string): void };
  logger: Logger;
  /** One run of the job: get a machine (of the given market), run, release it. */
  attempt(opts: AcquireOptions): Promise<JobOutcome>;
  /** The job was aborted (GitLab or a shutdown): no second run. */
  stopped(): boolean;
  /** Told of every interruption (the spot circuit breaker, metrics). */
  onInterrupted?(i: MachineInterruption): void;
}

function interruptionOf(o: JobOutcome): MachineInterruption | undefined {
  return o.state === 'failed' ? o.interruption : undefined;
}

export async function runWithInterruptionRerun(o: InterruptionRerunOptions): Promise<JobOutcome> {
  const first = await o.attempt({});
  const notice = interruptionOf(first);
  if (!notice) return first;
  o.onInterrupted?.(notice);
  const why = describeInterruption(notice);
  const decide = (reason: RerunReason) => o.logger.warn({ job: o.job.id, action: notice.action, time: notice.time, decision: reason }, 'job interrupted with its machine');
  const fail = (reason: RerunReason, message: string): JobOutcome => {
    decide(reason);
    o.trace.write(`${RED}ERROR: Job failed (system failure): ${message}${RESET}\n`);
    return failed('runner_system_failure', message);
  };
  if (o.stopped()) return fail('stopped', why);
  if (!retryOnInterruption(o.job)) return fail('opted_out', `${why}; not run again because ${RETRY_ON_INTERRUPTION_VARIABLE} is "false"`);
  decide('rerun');
  o.trace.write(`${YELLOW}WARNING: running the job again, from the start, on a new on-demand machine (once; set ${RETRY_ON_INTERRUPTION_VARIABLE}: "false" to fail instead)${RESET}\n`);
  const second = await o.attempt({ market: 'on-demand' });
  const again = interruptionOf(second);
  if (!again) return second;
  o.onInterrupted?.(again);
  return fail('interrupted_again', `${describeInterruption(again)} again, on the machine the job ran again on; not run a third time`);
}
