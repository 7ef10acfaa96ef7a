// A job on an executor with a jobRole gets its own AWS credentials, through the built CLI: the coordinator
// assumes the role at a fake STS (reached through AWS_ENDPOINT_URL_STS, STS's query protocol), and the job —
// docker style, in its own image — sees working credentials as masked variables: the values it holds are
// the ones STS issued for its session, and none of them appears in its trace.
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker, ensureTestImages } from '../helpers/docker-images.js';
import { FakeSts } from '../helpers/fake-sts.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

const ROLE = 'arn:aws:iam::123456789012:role/ci-deploy-dev';
let stack: Stack | undefined;
let closeSts: (() => Promise<void>) | undefined;
beforeAll(() => {
  ensureDocker();
  ensureTestImages();
}, 120_000);
afterEach(async () => {
  await stack?.cleanup();
  await closeSts?.();
  stack = undefined;
  closeSts = undefined;
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('e2e: AWS credentials per job from the executor\'s jobRole', () => {
  it('a docker-style job gets masked STS credentials of its role, in a session named after it', async () => {
    const sts = new FakeSts();
    sts.addRole(ROLE, 3600);
    const endpoint = await sts.listen();
    closeSts = endpoint.close;
    stack = await startStack({
      env: { AWS_ENDPOINT_URL_STS: endpoint.url, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'fake-coordinator-key', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true' },
      executors: [
        '  - name: deploy-dev',
        '    provider: local',
        '    style: docker',
        '    maxMachines: 1',
        '    docker:',
        `      defaultImage: ${BUSYBOX_IMAGE}`,
        '      pullPolicy: if-not-present',
        '    jobRole:',
        `      roleArn: ${ROLE}`,
        '      region: eu-west-1',
      ],
    });
    const p = await createSimplePipeline(stack.fake, [
      {
        name: 'sam-deploy',
        image: BUSYBOX_IMAGE,
        script: [
          'echo "key id: $AWS_ACCESS_KEY_ID"',
          'echo "secret: $AWS_SECRET_ACCESS_KEY"',
          'printf %s "$AWS_SECRET_ACCESS_KEY" | sha256sum',
          'printf %s "$AWS_SESSION_TOKEN" | sha256sum',
          'echo "region: $AWS_REGION"',
        ],
      },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.state).toBe('success');
    expect(sts.issued).toHaveLength(1);
    const s = sts.issued[0]!;
    expect(s.sessionName).toBe(`fleetrunner-job-${job.id}`);
    expect(s.tags['gitlab-job']).toBe(String(job.id));
    // The job holds exactly what STS issued for its session…
    expect(job.traceText).toContain(sha256(s.secretAccessKey));
    expect(job.traceText).toContain(sha256(s.sessionToken));
    // …and its trace shows none of it.
    expect(job.traceText).toContain('key id: [MASKED]');
    expect(job.traceText).toContain('secret: [MASKED]');
    for (const v of [s.accessKeyId, s.secretAccessKey, s.sessionToken]) expect(job.traceText).not.toContain(v);
    expect(job.traceText).toContain(`Using AWS credentials of role ${ROLE} for this job`);
    expect(job.traceText).toContain('region: eu-west-1');
    // Nor does the coordinator's log.
    for (const v of [s.secretAccessKey, s.sessionToken]) expect(stack.log()).not.toContain(v);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);

  it('a role STS refuses fails the job as a system failure naming the role and the reason', async () => {
    const sts = new FakeSts();
    const endpoint = await sts.listen();
    closeSts = endpoint.close;
    stack = await startStack({
      env: { AWS_ENDPOINT_URL_STS: endpoint.url, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'fake-coordinator-key', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true' },
      executors: ['  - name: deploy-prod', '    provider: local', '    style: shell', '    maxMachines: 1', '    jobRole:', `      roleArn: ${ROLE.replace('dev', 'prod')}`],
    });
    const p = await createSimplePipeline(stack.fake, [{ name: 'deploy', script: ['echo never'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'runner_system_failure' });
    expect(job.traceText).toContain(`could not get AWS credentials for the job: STS AssumeRole on ${ROLE.replace('dev', 'prod')}: AccessDenied`);
    expect(job.traceText).not.toContain('never\n');
    expect(await stack.stop()).toBe(0);
  }, 180_000);
});
