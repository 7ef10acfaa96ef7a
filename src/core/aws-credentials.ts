// A job's own AWS identity (the executor's `jobRole`), as the runner hands it to the executor.
//
// Two forms (src/providers/aws/sts-job-role.ts decides which a job gets):
// - `variables`: the session's keys are masked job variables (AWS_ACCESS_KEY_ID, …). Every tool reads
//   them, but they cannot change once the job runs: the job has them for one session.
// - `file`: the keys are in a file on the job's machine that a `credential_process` in the job's AWS
//   config prints, and the executor rewrites it with a new session before the old one expires. SDKs re-run
//   `credential_process` before the Expiration it printed, so even one long-running process keeps working.
//   No AWS_ACCESS_KEY_ID variable is set: in every SDK's chain the environment comes before the files.

import type { JobVariable } from './job.js';

/** One STS session's credentials. */
export interface AwsSession {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  /** When it stops working (ms epoch). */
  expiresAt: number;
}

export type JobCredentialsForm = 'variables' | 'file';

/** What the job's role gave for one job. */
export interface JobCredentials {
  role: string;
  form: JobCredentialsForm;
  session: AwsSession;
  /** `session.expiresAt`. */
  expiresAt: number;
  /** Variables for the job: the keys themselves (masked) in the `variables` form; the region in both. */
  variables: JobVariable[];
}

/** The `file` form as the executor gets it (JobRunContext.awsCredentials). */
export interface RenewableCredentials {
  /** The session the job starts with; absent for a job continued from an earlier coordinator (the
   *  executor then reads the machine's file, which also tells whether the job uses the file form at all). */
  session?: AwsSession;
  /** A new session for the same job (STS). Rejects with a message that names the role and the cause. */
  renew(): Promise<AwsSession>;
}

/** The session's values that must never reach a trace or a log. */
export function sessionSecrets(s: AwsSession): string[] {
  return [s.accessKeyId, s.secretAccessKey, s.sessionToken];
}
