// `fleetrunner verify` in-process: the strict fake GitLab, a stateful fake EC2/SSM at the SDK boundary (DryRun,
// missing permissions, unknown subnets), a real S3-compatible server (s3rver) for HeadBucket, and ECR through
// aws-sdk-client-mock. What is checked is the printed table and the exit code.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ECRClient, ECRServiceException, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { runVerify, verifyChecks, type VerifyOptions } from '../../../src/cli/verify.js';
import { parseConfigText, type FleetConfig } from '../../../src/config/index.js';
import type { CheckResult } from '../../../src/core/preflight.js';
import { FakeGitLab } from '../../../src/fakegitlab/index.js';
import { FakeEc2 } from '../../helpers/fake-ec2.js';
import { VirtualClock } from '../gitlab/helpers/virtual-clock.js';
import { startLocalS3, type LocalS3 } from './s3rver.js';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const ECR_PASSWORD = `ecr-${randomBytes(8).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'fr-verify-'));

let gitlab: FakeGitLab;
let s3: LocalS3;
let runnerToken: string;
const ecrClient = new ECRClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
const ecr = mockClient(ecrClient);

beforeAll(async () => {
  gitlab = new FakeGitLab();
  await gitlab.start();
  runnerToken = gitlab.addRunner().token;
  s3 = await startLocalS3('fr-cache');
});

afterEach(() => {
  ecr.reset();
});

afterAll(async () => {
  expect(gitlab.violations).toEqual([]);
  await gitlab.stop();
  await s3.stop();
  ecr.restore();
  rmSync(dir, { recursive: true, force: true });
});

function config(o: { token?: string; bucket?: string; subnets?: string; extraExecutor?: string } = {}): FleetConfig {
  return parseConfigText(`gitlab:
  url: ${gitlab.url}
  token: ${o.token ?? runnerToken}
concurrent: 4
stateDir: ${join(dir, 'state')}
executors:
  - name: dind
    provider: ec2
    style: docker
    privileged: true
    maxMachines: 10
    cache:
      s3: { bucket: ${o.bucket ?? 'fr-cache'}, prefix: fleetrunner/, endpoint: ${s3.endpoint}, forcePathStyle: true }
    ecr:
      pushRegistries: [${REGISTRY}]
    ec2:
      region: eu-west-1
      subnets: ${o.subnets ?? '[subnet-0aaa1111, subnet-0bbb2222]'}
      securityGroups: [sg-0ccc3333]
      instanceTypes: [c6i.xlarge, m6i.xlarge]
      iamInstanceProfile: fleetrunner-executor
      spot: true
${o.extraExecutor ?? ''}`);
}

function ecrAnswers(): void {
  ecr.on(GetAuthorizationTokenCommand).resolves({
    authorizationData: [{ authorizationToken: Buffer.from(`AWS:${ECR_PASSWORD}`).toString('base64'), expiresAt: new Date(Date.now() + 12 * 3600_000), proxyEndpoint: `https://${REGISTRY}` }],
  });
}

async function verify(cfg: FleetConfig, fake: FakeEc2, extra: Partial<VerifyOptions> = {}): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runVerify(cfg, {
    clock: new VirtualClock(),
    preflight: { awsClients: () => ({ ec2: fake.ec2, ssm: fake.ssm, s3: s3.client(), ecr: () => ecrClient }), random: () => 0.5 },
    write: (s) => (out += s),
    ...extra,
  });
  return { code, out };
}

/** The row of the table for executor/check/target (columns are separated by two or more spaces). */
function row(out: string, executor: string, check: string, target?: string): string[] {
  const rows = out
    .split('\n')
    .map((l) => l.split(/ {2,}/))
    .filter((cells) => cells[0] === executor && cells[1] === check && (target === undefined || cells[2] === target));
  expect(rows, `one row for ${executor} ${check} ${target ?? ''} in:\n${out}`).toHaveLength(1);
  return rows[0]!;
}

describe('fleetrunner verify (fake GitLab, fake EC2, s3rver, mocked ECR)', () => {
  it('all passing: prints every check as pass and exits 0', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    const { code, out } = await verify(config(), fake);
    expect(out.split('\n')[0]).toMatch(/^EXECUTOR +CHECK +TARGET +RESULT +DETAIL$/);
    expect(row(out, 'gitlab', 'gitlab-token', gitlab.url)[3]).toBe('pass');
    expect(row(out, 'dind', 'aws-credentials', 'region eu-west-1')[3]).toBe('pass');
    expect(row(out, 'dind', 'ami')[2]).toMatch(/^ami-0123456789abcdef0 \(SSM \/aws\/service\/ami-amazon-linux-latest\//);
    expect(row(out, 'dind', 'ami')[3]).toBe('pass');
    expect(row(out, 'dind', 'security-groups', 'sg-0ccc3333')[3]).toBe('pass');
    for (const subnet of ['subnet-0aaa1111', 'subnet-0bbb2222']) {
      for (const type of ['c6i.xlarge', 'm6i.xlarge']) {
        expect(row(out, 'dind', 'run-instances', `${subnet} × ${type} (spot)`).slice(3)).toEqual(['pass', 'DryRunOperation: the launch would succeed']);
      }
    }
    expect(row(out, 'dind', 's3-cache', 's3://fr-cache/fleetrunner/')[3]).toBe('pass');
    expect(row(out, 'dind', 'ecr-login', REGISTRY)[3]).toBe('pass');
    // A new deployment has no instance to try CreateTags on yet.
    expect(row(out, 'dind', 'create-tags').slice(2)).toEqual(['instances of this executor', 'skip', 'no instance of this executor to try it on; checked again once one runs']);
    expect(out).toContain('all 10 checks passed (1 not checked)');
    expect(code).toBe(0);

    // Dry runs only: the request a launch sends, nothing launched.
    expect(fake.dryRuns).toBe(4);
    expect(fake.instances.size).toBe(0);
    const dry = fake.runInputs[0]!;
    expect(dry).toMatchObject({ DryRun: true, IamInstanceProfile: { Name: 'fleetrunner-executor' }, MetadataOptions: { HttpTokens: 'required' } });
    expect(dry.InstanceMarketOptions?.MarketType).toBe('spot');
    // With the tag keys a launch sets (policies may restrict them).
    const keys = dry.TagSpecifications!.find((t) => t.ResourceType === 'instance')!.Tags!.map((t) => t.Key);
    expect(keys).toEqual(expect.arrayContaining(['fleetrunner:key-nonce', 'fleetrunner:host-key', 'fleetrunner:key-seal']));
    // Secrets never printed: not the runner token, not the ECR login.
    expect(out).not.toContain(runnerToken);
    expect(out).not.toContain(ECR_PASSWORD);
    expect(out).not.toContain(Buffer.from(`AWS:${ECR_PASSWORD}`).toString('base64'));
  });

  it('create-tags: a dry run on one of the executor\'s instances; a policy allowing tags only at launch fails it, saying why', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    const inst = fake.addInstance({ tags: { 'fleetrunner:fleet': 'fleetrunner', 'fleetrunner:executor': 'dind', 'fleetrunner:coordinator': 'c' } });
    fake.addInstance({ tags: { 'fleetrunner:fleet': 'another-fleet', 'fleetrunner:executor': 'dind', 'fleetrunner:coordinator': 'c' } });
    let r = await verify(config(), fake);
    expect(row(r.out, 'dind', 'create-tags').slice(2)).toEqual([inst.id, 'pass', 'DryRunOperation: state and job labels can be written']);
    expect(fake.createTagsInputs.map((i) => [i.DryRun, i.Resources])).toEqual([[true, [inst.id]]]);
    expect(inst.tags['fleetrunner:state']).toBeUndefined();
    expect(r.code).toBe(0);

    fake.createTagsOnlyAtLaunch = true;
    r = await verify(config(), fake);
    const failed = row(r.out, 'dind', 'create-tags');
    expect(failed[3]).toBe('fail');
    expect(r.out).toMatch(/UnauthorizedOperation: the coordinator labels running instances \(fleetrunner:state, fleetrunner:job\) so that a successor can tell idle from busy: allow ec2:CreateTags on them, not only with RunInstances/);
    expect(row(r.out, 'dind', 'run-instances', 'subnet-0aaa1111 × c6i.xlarge (spot)')[3]).toBe('pass');
    expect(r.code).toBe(1);
  });

  it('throttled dry runs are paced and retried, not reported as failures', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    fake.failNext('RunInstances', 2, 'RequestLimitExceeded');
    const { code, out } = await verify(config(), fake);
    expect(code).toBe(0);
    expect(fake.calls.RunInstances).toBe(6);
    expect(fake.dryRuns).toBe(6);
    expect(out).toContain('all 10 checks passed');
  });

  it('a subnet that does not exist fails its dry runs with InvalidSubnetID.NotFound: exit 1', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    const { code, out } = await verify(config({ subnets: '[subnet-0aaa1111, subnet-0fff9999]' }), fake);
    expect(code).toBe(1);
    for (const type of ['c6i.xlarge', 'm6i.xlarge']) {
      expect(row(out, 'dind', 'run-instances', `subnet-0aaa1111 × ${type} (spot)`)[3]).toBe('pass');
      const bad = row(out, 'dind', 'run-instances', `subnet-0fff9999 × ${type} (spot)`);
      expect(bad[3]).toBe('fail');
      expect(bad[4]).toBe("InvalidSubnetID.NotFound: The subnet ID 'subnet-0fff9999' does not exist");
    }
    expect(out).toContain('2 of 11 checks failed (1 not checked)');
  });

  it('a missing permission (iam:PassRole for the instance profile) fails every dry run with UnauthorizedOperation', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    fake.deny('iam:PassRole');
    const { code, out } = await verify(config(), fake);
    expect(code).toBe(1);
    const failedRows = out.split('\n').filter((l) => /^dind +run-instances .* fail +UnauthorizedOperation: You are not authorized/.test(l));
    expect(failedRows).toHaveLength(4);
    // The encoded authorization message is cut from the table and given in full below it (for `aws sts decode-authorization-message`).
    expect(out).toContain('In full:\ndind run-instances subnet-0aaa1111 × c6i.xlarge (spot); dind run-instances subnet-0aaa1111 × m6i.xlarge (spot); ');
    expect(out).toMatch(/is not authorized to perform: iam:PassRole .*Encoded authorization failure message: \S+/);
    expect(row(out, 'dind', 'aws-credentials')[3]).toBe('pass');
    expect(out).toContain('4 of 11 checks failed (1 not checked)');
  });

  it('without ec2:DescribeImages / DescribeSecurityGroups (permissions run does not need) those rows are not failures', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    fake.deny('ec2:DescribeImages');
    fake.deny('ec2:DescribeSecurityGroups');
    fake.deny('ec2:DescribeAvailabilityZones');
    const { code, out } = await verify(config(), fake);
    expect(code).toBe(0);
    expect(row(out, 'dind', 'aws-credentials')[4]).toMatch(/credentials accepted \(ec2:DescribeAvailabilityZones is not allowed/);
    expect(row(out, 'dind', 'ami').slice(3)).toEqual(['pass', 'resolved; ec2:DescribeImages is not allowed; the run-instances dry run checks that the image exists']);
    expect(row(out, 'dind', 'security-groups')[3]).toBe('skip');
    expect(out).toContain('all 9 checks passed (2 not checked)');
  });

  it('credentials AWS refuses: one failure, the EC2 and ECR checks not run', async () => {
    ecrAnswers();
    const fake = new FakeEc2();
    fake.failNext('DescribeAvailabilityZones', 1, 'AuthFailure', 'AWS was not able to validate the provided access credentials');
    const results = await verifyChecks(config(), {
      clock: new VirtualClock(),
        preflight: { awsClients: () => ({ ec2: fake.ec2, ssm: fake.ssm, s3: s3.client(), ecr: () => ecrClient }) },
    });
    const by = (check: string) => results.filter((r) => r.executor === 'dind' && r.check === check);
    expect(by('aws-credentials')).toEqual([
      { executor: 'dind', check: 'aws-credentials', target: 'region eu-west-1', status: 'fail', code: 'AuthFailure', message: 'AWS was not able to validate the provided access credentials', retryable: false },
    ]);
    expect(by('run-instances').map((r) => r.status)).toEqual(['skip', 'skip', 'skip', 'skip']);
    expect(by('ecr-login')[0]!.status).toBe('skip');
    // The cache has its own endpoint here, so it is still checked.
    expect(by('s3-cache')[0]!.status).toBe('pass');
    expect(fake.dryRuns).toBe(0);
    expect(ecr.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(0);
  });

  it('a missing bucket, an AMI parameter that does not exist, ECR denied: each fails with its code', async () => {
    ecr.on(GetAuthorizationTokenCommand).rejects(new ECRServiceException({ name: 'AccessDeniedException', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'User is not authorized to perform: ecr:GetAuthorizationToken' }));
    const fake = new FakeEc2();
    fake.parameters.clear();
    const { code, out } = await verify(config({ bucket: 'no-such-bucket' }), fake);
    expect(code).toBe(1);
    expect(row(out, 'dind', 's3-cache', 's3://no-such-bucket/fleetrunner/').slice(3)).toEqual(['fail', 'NotFound: no such bucket']);
    expect(row(out, 'dind', 'ami').slice(3)).toEqual(['fail', 'ParameterNotFound: no such SSM parameter in this region (set ec2.amiParameter or ec2.ami)']);
    expect(row(out, 'dind', 'run-instances', 'subnet-0aaa1111 × c6i.xlarge (spot)').slice(3)).toEqual(['skip', 'not checked: no AMI']);
    expect(row(out, 'dind', 'ecr-login')[4]).toBe('AccessDeniedException: the coordinator needs ecr:GetAuthorizationToken: User is not authorized to perform: ecr:GetAuthorizationToken');
  });

  it('a token GitLab refuses: gitlab-token fails with "token refused", without printing the token', async () => {
    ecrAnswers();
    const bad = `glrt-${randomBytes(12).toString('hex')}`;
    const { code, out } = await verify(config({ token: bad }), new FakeEc2());
    expect(code).toBe(1);
    expect(row(out, 'gitlab', 'gitlab-token').slice(3)).toEqual(['fail', 'HTTP 403: token refused: it is invalid or expired, or the runner was deleted']);
    expect(out).not.toContain(bad);
  });

  it('--executor limits the executor checks to one; local executors check sshd', async () => {
    const cfg = config({
      extraExecutor: '  - name: local\n    provider: local\n    maxMachines: 2\n',
    });
    const results: CheckResult[] = await verifyChecks(cfg, {
      executor: 'local',
      clock: new VirtualClock(),
        preflight: { sshdPath: join(dir, 'no-sshd-here') },
    });
    expect(results.map((r) => [r.executor, r.check, r.status, r.code])).toEqual([
      ['gitlab', 'gitlab-token', 'pass', undefined],
      ['local', 'sshd', 'fail', 'ENOENT'],
    ]);
    writeFileSync(join(dir, 'sshd'), '#!/bin/sh\n', { mode: 0o755 });
    const ok = await verifyChecks(cfg, { executor: 'local', preflight: { sshdPath: join(dir, 'sshd') } });
    expect(ok.find((r) => r.check === 'sshd')?.status).toBe('pass');
  });
});
