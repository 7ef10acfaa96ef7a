// Per-job credentials from the executor's jobRole, against a stateful fake STS: the session names the job,
// carries its project, job and pipeline as session tags, lasts the job's timeout plus a margin within the
// configured length and STS's bounds, and reaches the job as masked variables. Refusals name the role and
// STS's code.
import { describe, expect, it } from 'vitest';

import { JobRole } from '../../../src/providers/aws/sts-job-role.js';
import { FakeSts } from '../../helpers/fake-sts.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { testToken } from '../../helpers/tokens.js';

const ROLE = 'arn:aws:iam::123456789012:role/ci-deploy-dev';
const job = (timeout: number) =>
  jobPayload({
    id: 42,
    token: testToken('glcbt-'),
    job_info: { name: 'deploy', project_id: 7, project_full_path: 'group/app' },
    git_info: { repo_url: 'http://x/a.git', ref: 'main', sha: 'abc' },
    runner_info: { timeout },
    variables: [{ key: 'CI_PIPELINE_ID', value: '9001', public: true }],
  } as Parameters<typeof jobPayload>[0]);

describe('JobRole', () => {
  it('assumes the role for the job: session name, tags, duration, masked variables', async () => {
    const sts = new FakeSts();
    sts.addRole(ROLE, 7200);
    const role = new JobRole(sts.client, { roleArn: ROLE, sessionDurationMs: 2 * 3600_000, region: 'eu-west-1' });
    const c = await role.credentialsFor(job(1800));
    const s = sts.issued[0]!;
    expect(s).toMatchObject({ roleArn: ROLE, sessionName: 'fleetrunner-job-42', durationSeconds: 2100, tags: { 'gitlab-project': 'group/app', 'gitlab-job': '42', 'gitlab-pipeline': '9001' } });
    expect(c.variables).toEqual([
      { key: 'AWS_ACCESS_KEY_ID', value: s.accessKeyId, masked: true, public: false },
      { key: 'AWS_SECRET_ACCESS_KEY', value: s.secretAccessKey, masked: true, public: false },
      { key: 'AWS_SESSION_TOKEN', value: s.sessionToken, masked: true, public: false },
      { key: 'AWS_REGION', value: 'eu-west-1', public: false },
      { key: 'AWS_DEFAULT_REGION', value: 'eu-west-1', public: false },
    ]);
    expect(c.expiresAt).toBe(s.expiration.getTime());
  });

  it.each([
    [60, 3600_000, 900], // STS's floor
    [36_000, 3600_000, 3600], // capped by the configured length
    [0, 43_200_000, 3900], // no timeout from GitLab: an hour plus the margin
  ])('a %i s job with a %i ms session limit asks for %i s', (timeout, limitMs, expected) => {
    const role = new JobRole(new FakeSts().client, { roleArn: ROLE, sessionDurationMs: limitMs });
    expect(role.durationSecondsFor(job(timeout))).toBe(expected);
  });

  it('names the role and STS\'s code when refused, and a duration past the role\'s maximum', async () => {
    const sts = new FakeSts();
    await expect(new JobRole(sts.client, { roleArn: ROLE, sessionDurationMs: 3600_000 }).credentialsFor(job(600))).rejects.toThrow(`STS AssumeRole on ${ROLE}: AccessDenied:`);
    sts.addRole(ROLE, 3600);
    await expect(new JobRole(sts.client, { roleArn: ROLE, sessionDurationMs: 4 * 3600_000 }).credentialsFor(job(4 * 3600))).rejects.toThrow(/ValidationError: The requested DurationSeconds exceeds the MaxSessionDuration/);
  });
});

describe('JobRole: which form a job gets', () => {
  it.each([
    ['auto', 1800, 3600_000, 'variables'], // one session lasts the job
    ['auto', 3600, 3600_000, 'variables'], // exactly: today's behaviour for GitLab's default timeout
    ['auto', 7200, 3600_000, 'file'], // a chained role's hour cannot last a 2 h job
    ['variables', 7200, 3600_000, 'variables'],
    ['file', 600, 3600_000, 'file'],
  ] as const)('%s with a %i s job and a %i ms session: %s', (credentials, timeout, limitMs, form) => {
    const role = new JobRole(new FakeSts().client, { roleArn: ROLE, sessionDurationMs: limitMs, credentials });
    expect(role.formFor(job(timeout))).toBe(form);
  });

  it('the file form hands over the session and no key variables (they would come before the file)', async () => {
    const sts = new FakeSts();
    sts.addRole(ROLE, 3600);
    const c = await new JobRole(sts.client, { roleArn: ROLE, sessionDurationMs: 3600_000, region: 'eu-west-1' }).credentialsFor(job(4 * 3600));
    const s = sts.issued[0]!;
    expect(c.form).toBe('file');
    expect(c.session).toEqual({ accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, sessionToken: s.sessionToken, expiresAt: s.expiration.getTime() });
    expect(c.variables.map((v) => v.key)).toEqual(['AWS_REGION', 'AWS_DEFAULT_REGION']);
  });
});
