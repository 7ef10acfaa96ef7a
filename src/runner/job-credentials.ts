// A job's own AWS credentials (the executor's `jobRole`), added to its payload before it reaches a machine:
// masked variables, masked in its trace from here on, with a trace line naming the role and when they expire.
// A failure fails the job: it would otherwise run with no credentials, or with the wrong ones.

import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import { failed, type JobOutcome } from '../core/outcome.js';
import type { ExecutorRuntime } from './job-run.js';
import type { JobTrace } from './trace/job-trace.js';

const RED = '\x1b[31;1m';
const RESET = '\x1b[0;m';

export async function withJobCredentials(
  job: JobPayload,
  get: NonNullable<ExecutorRuntime['jobCredentials']>,
  trace: JobTrace,
  clock: Clock,
  logger: Logger,
): Promise<{ job: JobPayload } | { failed: JobOutcome }> {
  try {
    const c = await get(job);
    trace.addSecrets(c.variables.filter((v) => v.masked).map((v) => v.value));
    trace.write(`Using AWS credentials of role ${c.role} for this job, valid until ${new Date(c.expiresAt).toISOString()}\n`);
    const timeoutS = job.runner_info.timeout;
    if (timeoutS !== undefined && timeoutS > 0 && c.expiresAt < clock.now() + timeoutS * 1000) {
      trace.write(`WARNING: the job may run for ${Math.round(timeoutS / 60)} min, longer than its AWS credentials last (raise jobRole.sessionDuration and the role's MaxSessionDuration)\n`);
    }
    return { job: { ...job, variables: [...job.variables, ...c.variables] } };
  } catch (e) {
    const why = `could not get AWS credentials for the job: ${errorMessage(e)}`;
    logger.warn({ job: job.id, err: errorMessage(e) }, 'job credentials');
    trace.write(`${RED}ERROR: Job failed (system failure): ${why}${RESET}\n`);
    return { failed: failed('runner_system_failure', why) };
  }
}
