// AWS credentials for one job from the role its executor names (`jobRole`): STS AssumeRole with the job in
// the session's name and tags, for no longer than the job may run, handed to the job as masked variables.
// Jobs on instances cannot reach the instance role (IMDSv2 hop limit 1 keeps containers off it), and the
// instance role must not be what a job uses: these credentials are the job's own, gone when it ends.
//
// Session name `fleetrunner-job-<id>` (CloudTrail shows which job acted); session tags `gitlab-project`,
// `gitlab-job`, `gitlab-pipeline` (a role's trust and permission policies can condition on them:
// aws:PrincipalTag/gitlab-project). The role's trust policy must allow sts:AssumeRole and sts:TagSession.

import { AssumeRoleCommand, type STSClient } from '@aws-sdk/client-sts';

import type { JobCredentials, JobCredentialsForm } from '../../core/aws-credentials.js';
import type { JobPayload, JobVariable } from '../../core/job.js';

export interface JobRoleConfig {
  roleArn: string;
  /** Longest session asked for (the role's MaxSessionDuration bounds it; AWS's floor is 15 minutes). */
  sessionDurationMs: number;
  /** AWS_REGION / AWS_DEFAULT_REGION handed to the job. */
  region?: string;
  externalId?: string;
  /** How the job gets them (core/aws-credentials.ts); `auto` (the default): `variables` when one session
   *  lasts the job's timeout, `file` (renewed while the job runs) when the job may outlive it. */
  credentials?: JobCredentialsForm | 'auto';
}

/** STS's bounds on DurationSeconds. */
const MIN_SESSION_S = 900;
const MAX_SESSION_S = 43_200;
/** Above the job's timeout: the job's own last steps (after_script, uploads) still have credentials. */
const SESSION_MARGIN_S = 300;

/** Tag values: letters, digits, spaces and `_.:/=+-@`, at most 256 characters (STS's rule). */
function tagValue(v: string): string {
  return (v.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_') || '_').slice(0, 256);
}

export class JobRole {
  constructor(
    private readonly sts: Pick<STSClient, 'send'>,
    private readonly c: JobRoleConfig,
  ) {}

  get roleArn(): string {
    return this.c.roleArn;
  }

  /** The session's length for a job: its timeout plus a margin, within the configured length and STS's bounds. */
  durationSecondsFor(job: JobPayload): number {
    const t = job.runner_info.timeout;
    const timeoutS = t !== undefined && t > 0 ? t : 3600;
    const wanted = Math.min(timeoutS + SESSION_MARGIN_S, Math.floor(this.c.sessionDurationMs / 1000));
    return Math.max(MIN_SESSION_S, Math.min(MAX_SESSION_S, wanted));
  }

  /** The form a job gets. `auto` picks the file exactly when the variables would run out before the job's
   *  timeout (a role chained from the coordinator's task role lasts an hour at most, GitLab's default
   *  timeout is an hour too, and the 5-minute margin then does not fit). */
  formFor(job: JobPayload): JobCredentialsForm {
    const mode = this.c.credentials ?? 'auto';
    if (mode !== 'auto') return mode;
    const t = job.runner_info.timeout;
    const timeoutS = t !== undefined && t > 0 ? t : 3600;
    return timeoutS > this.durationSecondsFor(job) ? 'file' : 'variables';
  }

  async credentialsFor(job: JobPayload): Promise<JobCredentials> {
    let out;
    try {
      out = await this.sts.send(
      new AssumeRoleCommand({
        RoleArn: this.c.roleArn,
        RoleSessionName: `fleetrunner-job-${job.id}`,
        DurationSeconds: this.durationSecondsFor(job),
        ...(this.c.externalId !== undefined && { ExternalId: this.c.externalId }),
        Tags: [
          { Key: 'gitlab-project', Value: tagValue(job.job_info.project_full_path || String(job.job_info.project_id)) },
          { Key: 'gitlab-job', Value: String(job.id) },
          { Key: 'gitlab-pipeline', Value: tagValue(String(pipelineId(job) ?? 'unknown')) },
        ],
      }),
      );
    } catch (e) {
      const err = e as { name?: string; message?: string };
      throw new Error(`STS AssumeRole on ${this.c.roleArn}: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`);
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) throw new Error(`STS AssumeRole on ${this.c.roleArn} returned no credentials`);
    const masked = (key: string, value: string): JobVariable => ({ key, value, masked: true, public: false });
    const plain = (key: string, value: string): JobVariable => ({ key, value, public: false });
    const form = this.formFor(job);
    const expiresAt = c.Expiration ? c.Expiration.getTime() : Date.now() + this.durationSecondsFor(job) * 1000;
    const session = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiresAt };
    return {
      variables: [
        // The file form sets no keys: the environment would come before the renewed file in every SDK's chain.
        ...(form === 'variables'
          ? [masked('AWS_ACCESS_KEY_ID', c.AccessKeyId), masked('AWS_SECRET_ACCESS_KEY', c.SecretAccessKey), masked('AWS_SESSION_TOKEN', c.SessionToken)]
          : []),
        ...(this.c.region !== undefined ? [plain('AWS_REGION', this.c.region), plain('AWS_DEFAULT_REGION', this.c.region)] : []),
      ],
      expiresAt,
      session,
      form,
      role: this.c.roleArn,
    };
  }
}

function pipelineId(job: JobPayload): string | undefined {
  return job.variables.find((v) => v.key === 'CI_PIPELINE_ID')?.value;
}
