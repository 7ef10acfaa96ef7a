// A job's own AWS credentials (the executor's `jobRole`), before the job reaches a machine. In the
// `variables` form they are added to its payload as masked variables; in the `file` form (a job that may
// outlive one session) the executor gets them as `awsCredentials` and keeps a file on the machine renewed
// (src/executors/credentials-refresher.ts). Either way they are masked in its trace from here on, and a
// trace line names the role and when they expire. A failure fails the job: it would otherwise run with no
// credentials, or with the wrong ones.

import { sessionSecrets, type AwsSession, type JobCredentials, type RenewableCredentials } from '../core/aws-credentials.js';
import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import { failed, type JobOutcome } from '../core/outcome.js';
import type { JobTrace } from './trace/job-trace.js';

const RED = '\x1b[31;1m';
const RESET = '\x1b[0;m';

export type GetJobCredentials = (job: JobPayload) => Promise<JobCredentials>;

/** The file form's sessions for one job: the newest one (a machine the job moves to starts from it) and
 *  how to get the next. */
export class JobCredentialFeed {
  constructor(
    private readonly get: GetJobCredentials,
    private readonly job: JobPayload,
    private latest: AwsSession | undefined,
  ) {}

  renew = async (): Promise<AwsSession> => {
    const s = (await this.get(this.job)).session;
    this.latest = s;
    return s;
  };

  /** For one attempt: a continued job reads its machine's session; a new machine gets the newest one. */
  async forAttempt(continued: boolean): Promise<RenewableCredentials> {
    if (continued) return { renew: this.renew };
    return { session: this.latest ?? (await this.renew()), renew: this.renew };
  }
}

export async function withJobCredentials(
  job: JobPayload,
  get: GetJobCredentials,
  trace: JobTrace,
  clock: Clock,
  logger: Logger,
): Promise<{ job: JobPayload; feed?: JobCredentialFeed } | { failed: JobOutcome }> {
  try {
    const c = await get(job);
    trace.addSecrets([...sessionSecrets(c.session), ...c.variables.filter((v) => v.masked).map((v) => v.value)]);
    const until = new Date(c.expiresAt).toISOString();
    const withVariables = { ...job, variables: [...job.variables, ...c.variables] };
    if (c.form === 'file') {
      trace.write(`Using AWS credentials of role ${c.role} for this job, from a credentials file renewed while the job runs (AWS_CONFIG_FILE; this session valid until ${until})\n`);
      return { job: withVariables, feed: new JobCredentialFeed(get, job, c.session) };
    }
    trace.write(`Using AWS credentials of role ${c.role} for this job, valid until ${until}\n`);
    const timeoutS = job.runner_info.timeout;
    if (timeoutS !== undefined && timeoutS > 0 && c.expiresAt < clock.now() + timeoutS * 1000) {
      trace.write(`WARNING: the job may run for ${Math.round(timeoutS / 60)} min, longer than its AWS credentials last (jobRole.credentials: file renews them while the job runs)\n`);
    }
    return { job: withVariables };
  } catch (e) {
    const why = `could not get AWS credentials for the job: ${errorMessage(e)}`;
    logger.warn({ job: job.id, err: errorMessage(e) }, 'job credentials');
    trace.write(`${RED}ERROR: Job failed (system failure): ${why}${RESET}\n`);
    return { failed: failed('runner_system_failure', why) };
  }
}
