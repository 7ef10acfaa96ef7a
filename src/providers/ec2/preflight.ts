// Preflight of an ec2 executor: can this coordinator launch its instances? One result per check, in order:
//   aws-credentials  DescribeAvailabilityZones with DryRun: DryRunOperation or UnauthorizedOperation both mean
//                    AWS accepted the credentials in that region (the action itself is not one we need).
//   ami              the configured id, or the SSM parameter resolved (ssm:GetParameter); DescribeImages says
//                    it exists and is available (without ec2:DescribeImages the launch dry run still checks it).
//   security-groups  DescribeSecurityGroups on the configured ids (same fallback).
//   run-instances    RunInstances with DryRun, per subnet × instance type, with the request a launch sends
//                    (tags on create, instance profile, encrypted root volume, IMDSv2, spot options): EC2
//                    evaluates ec2:RunInstances, ec2:CreateTags and iam:PassRole for the profile's role, and
//                    checks that the subnet, the AMI, the security groups and the instance profile exist.
//                    DryRunOperation = pass; anything else fails with AWS's code.
//   create-tags      CreateTags with DryRun on one of this executor's instances: the state and job labels
//                    are written after launch, which a policy allowing ec2:CreateTags only with RunInstances
//                    (ec2:CreateAction) refuses. Without an instance to try it on: skip, until one runs.
// Nothing is launched, nothing is tagged, no secret is sent (the user data is a placeholder, the key tags
// are made for the dry run with a throwaway secret).

import { randomBytes, randomUUID } from 'node:crypto';

import {
  CreateTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  RunInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';

import type { Clock } from '../../core/clock.js';
import type { CheckResult } from '../../core/preflight.js';
import type { Ec2ProviderConfig } from '../../core/provider-config.js';
import { classifyEc2Error } from './classify-error.js';
import { labelTags } from './instance-labels.js';
import { runInstancesInput } from './launch-input.js';
import { MachineIdentity } from './machine-identity.js';
import { ownershipFilters } from './ownership-tags.js';
import type { Pool } from './placement.js';
import { RequestPacer } from './request-pacer.js';
import { withThrottleRetry } from './throttle-retry.js';
import { generateEd25519 } from '../ssh-keys.js';

export const PREFLIGHT_TIMEOUT_MS = 20_000;
const PLACEHOLDER_USER_DATA = '#cloud-config\n# fleetrunner preflight: RunInstances with DryRun, nothing is launched\n';

export interface Ec2PreflightOptions {
  executor: string;
  fleet: string;
  config: Ec2ProviderConfig;
  clients: { ec2: EC2Client; ssm: SSMClient };
  clock: Clock;
  /** Each AWS call (throttling retries included in their own attempts) gives up after this. Default 20 s. */
  timeoutMs?: number;
  random?: () => number;
  /** Paces the dry runs, which share the account's RunInstances request bucket with real launches.
   *  Default: 2 at once, then 1 per second (half of AWS's refill, leaving room for launches). */
  pacer?: RequestPacer;
}

/** `subnet-0aaa1111 × c6i.xlarge (spot)` */
export function describeDryRunTarget(p: Pool): string {
  return `${p.subnet} × ${p.instanceType} (${p.market})`;
}

export async function ec2Preflight(o: Ec2PreflightOptions): Promise<CheckResult[]> {
  const c = o.config;
  const base = (check: string, target: string) => ({ executor: o.executor, check, target });
  const call = <T>(op: (abortSignal: AbortSignal) => Promise<T>): Promise<T> =>
    withThrottleRetry(() => op(AbortSignal.timeout(o.timeoutMs ?? PREFLIGHT_TIMEOUT_MS)), {
      clock: o.clock,
      attempts: 3,
      ...(o.random && { random: o.random }),
    });
  const market = c.spot ? 'spot' : 'on-demand';
  const pools: Pool[] = c.subnets.flatMap((subnet) => c.instanceTypes.map((instanceType) => ({ subnet, instanceType, market }) as const));
  const amiTarget = c.ami ?? `SSM ${c.amiParameter}`;
  const sgTarget = c.securityGroups.join(', ');
  const rest = (message: string): CheckResult[] => [
    { ...base('ami', amiTarget), status: 'skip', message },
    ...(c.securityGroups.length ? [{ ...base('security-groups', sgTarget), status: 'skip' as const, message }] : []),
    ...pools.map((p) => ({ ...base('run-instances', describeDryRunTarget(p)), status: 'skip' as const, message })),
  ];

  // 1. Credentials and region.
  let region: string;
  try {
    region = await o.clients.ec2.config.region();
  } catch (e) {
    return [
      { ...base('aws-credentials', 'region ?'), status: 'fail', code: 'RegionMissing', message: `no AWS region: set ec2.region or AWS_REGION (${oneLine(errorText(e))})` },
      ...rest('not checked: no AWS region'),
    ];
  }
  const access = await expectDryRun(() => call((abortSignal) => o.clients.ec2.send(new DescribeAvailabilityZonesCommand({ DryRun: true }), { abortSignal })));
  const accessTarget = `region ${region}`;
  if (access.kind === 'failed') return [failed(base('aws-credentials', accessTarget), access.error), ...rest('not checked: the AWS credentials or region failed')];
  const credentials: CheckResult = {
    ...base('aws-credentials', accessTarget),
    status: 'pass',
    message: access.kind === 'unauthorized' ? 'credentials accepted (ec2:DescribeAvailabilityZones is not allowed, and not needed)' : 'credentials accepted',
  };

  // 2. The AMI.
  const results: CheckResult[] = [credentials];
  let imageId = c.ami;
  if (imageId === undefined) {
    try {
      const out = await call((abortSignal) => o.clients.ssm.send(new GetParameterCommand({ Name: c.amiParameter }), { abortSignal }));
      const value = out?.Parameter?.Value?.trim();
      if (value && /^ami-[0-9a-f]+$/.test(value)) imageId = value;
      else results.push({ ...base('ami', amiTarget), status: 'fail', code: 'NotAnAmiId', message: `the parameter holds ${JSON.stringify(value ?? null)}, not an AMI id` });
    } catch (e) {
      const f = failed(base('ami', amiTarget), e);
      results.push(f.code === 'ParameterNotFound' ? { ...f, message: 'no such SSM parameter in this region (set ec2.amiParameter or ec2.ami)' } : f);
    }
  }
  if (imageId !== undefined) {
    const target = c.ami !== undefined ? imageId : `${imageId} (SSM ${c.amiParameter})`;
    try {
      const out = await call((abortSignal) => o.clients.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId!] }), { abortSignal }));
      const image = out?.Images?.find((i) => i.ImageId === imageId);
      if (!image) results.push({ ...base('ami', target), status: 'fail', code: 'InvalidAMIID.NotFound', message: `the image '${imageId}' does not exist or is not visible to this account` });
      else if (image.State !== undefined && image.State !== 'available') results.push({ ...base('ami', target), status: 'fail', code: `ImageState.${image.State}`, message: `the image is ${image.State}, not available` });
      else results.push({ ...base('ami', target), status: 'pass', message: c.ami !== undefined ? 'exists' : 'resolved; exists' });
    } catch (e) {
      if (isUnauthorized(e)) {
        // Not a permission the coordinator needs: say what was and was not seen, and let the dry run decide.
        const note = 'ec2:DescribeImages is not allowed; the run-instances dry run checks that the image exists';
        results.push(c.ami !== undefined ? { ...base('ami', target), status: 'skip', message: note } : { ...base('ami', target), status: 'pass', message: `resolved; ${note}` });
      } else results.push(failed(base('ami', target), e));
    }
  }

  // 3. Security groups.
  if (c.securityGroups.length) {
    try {
      const out = await call((abortSignal) => o.clients.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [...c.securityGroups] }), { abortSignal }));
      const seen = new Set((out?.SecurityGroups ?? []).map((g) => g.GroupId));
      const missing = c.securityGroups.filter((g) => !seen.has(g));
      results.push(
        missing.length
          ? { ...base('security-groups', sgTarget), status: 'fail', code: 'InvalidGroup.NotFound', message: `not found: ${missing.join(', ')}` }
          : { ...base('security-groups', sgTarget), status: 'pass', message: 'exist' },
      );
    } catch (e) {
      results.push(
        isUnauthorized(e)
          ? { ...base('security-groups', sgTarget), status: 'skip', message: 'ec2:DescribeSecurityGroups is not allowed; the run-instances dry run checks that they exist' }
          : failed(base('security-groups', sgTarget), e),
      );
    }
  }

  // 4. A launch, dry, in every pool: one after another, paced (RunInstances has a small request bucket).
  const pacer = o.pacer ?? new RequestPacer({ clock: o.clock, burst: 2, perSecond: 1 });
  // Tags shaped like a launch's key tags (policies may restrict tag keys), from a throwaway secret.
  const keyTags = new MachineIdentity(randomBytes(32), 'preflight').issue(generateEd25519('preflight').public).tags;
  for (const pool of pools) {
    const target = describeDryRunTarget(pool);
    if (imageId === undefined) {
      results.push({ ...base('run-instances', target), status: 'skip', message: 'not checked: no AMI' });
      continue;
    }
    const input = runInstancesInput({
      config: c,
      imageId,
      pool,
      owner: { fleet: o.fleet, executor: o.executor, coordinator: 'preflight' },
      name: `fleetrunner ${o.fleet}/${o.executor}`,
      userData: PLACEHOLDER_USER_DATA,
      clientToken: randomUUID(),
      machineTags: keyTags,
    });
    const r = await expectDryRun(() =>
      call(async (abortSignal) => {
        await pacer.take();
        return o.clients.ec2.send(new RunInstancesCommand({ ...input, DryRun: true }), { abortSignal });
      }),
    );
    if (r.kind === 'dry-run') results.push({ ...base('run-instances', target), status: 'pass', message: 'DryRunOperation: the launch would succeed' });
    else if (r.kind === 'failed' && classifyEc2Error(r.error).kind === 'capacity') {
      // Not a misconfiguration: the launcher moves on to the next pool (subnet × type × market) by itself.
      const c2 = classifyEc2Error(r.error);
      results.push({ ...base('run-instances', target), status: 'skip', code: c2.code, message: `no capacity here now; launches use the other pools (${c2.message})` });
    } else if (r.kind !== 'answered') results.push(failed(base('run-instances', target), r.error));
    else results.push({ ...base('run-instances', target), status: 'pass', message: 'accepted (this endpoint does not implement DryRun)' });
  }

  // 5. Labels on an instance after launch.
  results.push(await createTagsCheck(o, call));
  return results;
}

async function createTagsCheck(o: Ec2PreflightOptions, call: <T>(op: (abortSignal: AbortSignal) => Promise<T>) => Promise<T>): Promise<CheckResult> {
  const base = { executor: o.executor, check: 'create-tags' };
  let id: string | undefined;
  try {
    const filters = [...ownershipFilters({ fleet: o.fleet, executor: o.executor }), { Name: 'instance-state-name', Values: ['pending', 'running'] }];
    const page = await call((abortSignal) => o.clients.ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 5 }), { abortSignal }));
    id = page?.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId)?.InstanceId;
  } catch (e) {
    return failed({ ...base, target: 'instances of this executor' }, e);
  }
  if (id === undefined) return { ...base, target: 'instances of this executor', status: 'skip', message: 'no instance of this executor to try it on; checked again once one runs' };
  const r = await expectDryRun(() => call((abortSignal) => o.clients.ec2.send(new CreateTagsCommand({ DryRun: true, Resources: [id], Tags: labelTags({ state: 'idle' }) }), { abortSignal })));
  if (r.kind === 'dry-run') return { ...base, target: id, status: 'pass', message: 'DryRunOperation: state and job labels can be written' };
  if (r.kind === 'answered') return { ...base, target: id, status: 'pass', message: 'accepted (this endpoint does not implement DryRun)' };
  const f = failed({ ...base, target: id }, r.error);
  if (r.kind !== 'unauthorized') return f;
  const why = 'the coordinator labels running instances (fleetrunner:state, fleetrunner:job) so that a successor can tell idle from busy: allow ec2:CreateTags on them, not only with RunInstances';
  return { ...f, message: `${why}. ${f.message ?? ''}`.trim() };
}

type DryRunOutcome = { kind: 'dry-run' } | { kind: 'unauthorized'; error: unknown } | { kind: 'failed'; error: unknown } | { kind: 'answered' };

/** A call made with DryRun: true is expected to throw DryRunOperation. */
async function expectDryRun(op: () => Promise<unknown>): Promise<DryRunOutcome> {
  try {
    await op();
    return { kind: 'answered' };
  } catch (e) {
    const code = classifyEc2Error(e).code;
    if (code === 'DryRunOperation') return { kind: 'dry-run' };
    if (isUnauthorized(e)) return { kind: 'unauthorized', error: e };
    return { kind: 'failed', error: e };
  }
}

function isUnauthorized(e: unknown): boolean {
  return /^(UnauthorizedOperation|AccessDenied|AccessDeniedException)$/.test(classifyEc2Error(e).code);
}

/** A failed check from an SDK error: AWS's code and one line of its message. */
export function failed(base: Pick<CheckResult, 'executor' | 'check' | 'target'>, e: unknown): CheckResult {
  const c = classifyEc2Error(e);
  const timedOut = c.code === 'AbortError' || c.code === 'TimeoutError';
  return {
    ...base,
    status: 'fail',
    code: timedOut ? 'Timeout' : c.code,
    ...(timedOut ? { message: 'no answer from AWS in time' } : c.message !== c.code && { message: oneLine(c.message) }),
    retryable: timedOut || c.kind === 'throttled' || c.kind === 'transient' || c.code === 'CredentialsProviderError',
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One line. EC2's encoded authorization message stays whole: `aws sts decode-authorization-message` reads it. */
export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
