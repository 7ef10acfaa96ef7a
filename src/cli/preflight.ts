// What an executor needs before it takes a job, checked from its config: `preflight(executor, deps)` for one
// executor, and the gates `run` builds from it (one per executor, see fleet/executor-gate.ts).
//   fargate executors: ECS reached and the cluster there (providers/fargate/preflight.ts).
//   ec2 executors: AWS credentials and region, the AMI, security groups, RunInstances with DryRun per
//     subnet × instance type (providers/ec2/preflight.ts), then the S3 cache bucket and the ECR logins it
//     is configured with (providers/aws/preflight.ts).
//   local executors: sshd is there and executable (and root, for `local.network: namespace`).
// `fleetrunner verify` prints the same results, with the GitLab token check in front (cli/verify.ts).

import { constants } from 'node:fs';
import { access } from 'node:fs/promises';

import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SSMClient } from '@aws-sdk/client-ssm';

import type { ExecutorConfig, FleetConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { CheckResult } from '../core/preflight.js';
import { ExecutorGate, ExecutorGates } from '../fleet/executor-gate.js';
import { createEc2Client, createEcrClient, createEcsClient, createS3Client, createSsmClient } from '../providers/aws/clients.js';
import { ecrPreflight, s3CachePreflight } from '../providers/aws/preflight.js';
import { ec2Preflight } from '../providers/ec2/preflight.js';
import { fargatePreflight } from '../providers/fargate/preflight.js';

export type { CheckResult, CheckStatus } from '../core/preflight.js';
export { ExecutorGate, ExecutorGates, type GateState } from '../fleet/executor-gate.js';

/** The AWS clients an executor's checks use. */
export interface PreflightAwsClients {
  ec2: EC2Client;
  ssm: SSMClient;
  /** For `cache.s3` (its own region / endpoint). */
  s3: S3Client;
  ecr: (region: string) => ECRClient;
  /** Closes what the factory opened; called after the checks. */
  destroy?: () => void;
}

export interface PreflightDeps {
  /** Fleet name, for the tags of the dry-run launch. */
  fleet: string;
  clock: Clock;
  /** Seam: the AWS clients of an executor. Default: built from its config, as `run` builds them. */
  awsClients?: (executor: ExecutorConfig) => PreflightAwsClients;
  /** Default /usr/sbin/sshd (what the local provider starts). */
  sshdPath?: string;
  /** Default: the process runs as uid 0. */
  isRoot?: () => boolean;
  /** Per AWS call. Default 20 s. */
  timeoutMs?: number;
  random?: () => number;
}

/** Every check of one executor, in a stable order. Never throws for a failed check: it is a result. */
export async function preflight(e: ExecutorConfig, deps: PreflightDeps): Promise<CheckResult[]> {
  if (e.provider === 'local') return localPreflight(e, deps);
  if (e.provider === 'fargate' && e.fargate) {
    const ecs = createEcsClient(e.fargate.region !== undefined ? { region: e.fargate.region } : {});
    try {
      return await fargatePreflight({ executor: e.name, config: e.fargate, ecs, ...(deps.timeoutMs !== undefined && { timeoutMs: deps.timeoutMs }) });
    } finally {
      ecs.destroy();
    }
  }
  if (!e.ec2) return [{ executor: e.name, check: 'config', target: `provider ${e.provider}`, status: 'fail', code: 'NoProviderConfig', message: 'no ec2 settings' }];
  const clients = (deps.awsClients ?? defaultAwsClients)(e);
  try {
    const timeout = deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {};
    const results = await ec2Preflight({
      executor: e.name,
      fleet: deps.fleet,
      config: e.ec2,
      clients,
      clock: deps.clock,
      ...timeout,
      ...(deps.random && { random: deps.random }),
    });
    const credentialsFailed = results.some((r) => r.check === 'aws-credentials' && r.status === 'fail');
    const skipped = (check: string, target: string): CheckResult => ({ executor: e.name, check, target, status: 'skip', message: 'not checked: the AWS credentials or region failed' });
    const s3 = e.cache?.s3;
    if (s3) {
      // An S3-compatible store at its own endpoint may well work when EC2 does not.
      if (credentialsFailed && s3.endpoint === undefined) results.push(skipped('s3-cache', `s3://${s3.bucket}/${s3.prefix}`));
      else results.push(await s3CachePreflight({ executor: e.name, config: s3, s3: clients.s3, ...timeout }));
    }
    const registries = [...new Set([...(e.ecr?.pullRegistries ?? []), ...(e.ecr?.pushRegistries ?? [])])];
    if (registries.length) {
      if (credentialsFailed) results.push(skipped('ecr-login', registries.join(', ')));
      else results.push(...(await ecrPreflight({ executor: e.name, registries, ecr: clients.ecr, ...timeout })));
    }
    return results;
  } finally {
    clients.destroy?.();
  }
}

/** Local machines are sshd processes on this host: sshd must be there (and root, for network namespaces). */
async function localPreflight(e: ExecutorConfig, deps: PreflightDeps): Promise<CheckResult[]> {
  const sshd = deps.sshdPath ?? '/usr/sbin/sshd';
  const results: CheckResult[] = [];
  try {
    await access(sshd, constants.X_OK);
    results.push({ executor: e.name, check: 'sshd', target: sshd, status: 'pass', message: 'executable' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'Error';
    results.push({ executor: e.name, check: 'sshd', target: sshd, status: 'fail', code, message: code === 'ENOENT' ? 'not installed (install openssh-server)' : 'not executable by this user' });
  }
  if (e.local?.network === 'namespace') {
    const root = (deps.isRoot ?? (() => process.getuid?.() === 0))();
    results.push(
      root
        ? { executor: e.name, check: 'network-namespace', target: 'local.network: namespace', status: 'pass', message: 'running as root' }
        : { executor: e.name, check: 'network-namespace', target: 'local.network: namespace', status: 'fail', code: 'NotRoot', message: 'network namespaces need root' },
    );
  }
  return results;
}

/** The clients `run` would use for this executor: its region, the cache's region and endpoint, ECR by region. */
function defaultAwsClients(e: ExecutorConfig): PreflightAwsClients {
  const region = e.ec2?.region !== undefined ? { region: e.ec2.region } : {};
  const s3 = e.cache?.s3;
  const s3Region = s3?.region ?? e.ec2?.region;
  const ecr = new Map<string, ECRClient>();
  const made = {
    ec2: createEc2Client(region),
    ssm: createSsmClient(region),
    s3: createS3Client({
      ...(s3Region !== undefined && { region: s3Region }),
      ...(s3?.endpoint !== undefined && { endpoint: s3.endpoint }),
      ...(s3 && { forcePathStyle: s3.forcePathStyle }),
    }),
  };
  return {
    ...made,
    ecr: (r) => {
      let c = ecr.get(r);
      if (!c) ecr.set(r, (c = createEcrClient({ region: r })));
      return c;
    },
    destroy: () => {
      for (const c of [made.ec2, made.ssm, made.s3, ...ecr.values()]) c.destroy();
    },
  };
}

export interface ExecutorGatesOptions extends PreflightDeps {
  logger: Logger;
  /** Check every executor before returning (default true). */
  checkNow?: boolean;
  /** No checks at all: every gate is open. For the test/bench seam that replaces the providers (`providerFor`),
   *  whose config then does not describe the machines. */
  skipChecks?: boolean;
  /** While an executor fails: check again this often. Default 3 min. */
  retryMs?: number;
  /** While it passes: check again this often (0: never). Default 15 min. */
  revalidateMs?: number;
  /** Seam: the checks of one executor. Default `preflight`. */
  check?: (e: ExecutorConfig) => Promise<CheckResult[]>;
}

/**
 * A gate per executor of `config`, each checked once before this resolves (failures are logged by the gate).
 * Re-checks happen on `gates.tick()`: call it from a maintenance task.
 */
export async function startExecutorGates(config: Pick<FleetConfig, 'executors'>, o: ExecutorGatesOptions): Promise<ExecutorGates> {
  const check = o.check ?? ((e: ExecutorConfig) => preflight(e, o));
  const gates = new ExecutorGates(
    config.executors.map(
      (e) =>
        new ExecutorGate({
          executor: e.name,
          check: o.skipChecks ? async () => [] : () => check(e),
          clock: o.clock,
          logger: o.logger,
          ...(o.retryMs !== undefined && { retryMs: o.retryMs }),
          ...(o.skipChecks ? { revalidateMs: 0 } : o.revalidateMs !== undefined ? { revalidateMs: o.revalidateMs } : {}),
        }),
    ),
  );
  if (o.checkNow !== false) await gates.checkAll();
  return gates;
}

/** After a config reload: each gate checks its executor's new settings on the next `gates.tick()`. Gates of
 *  executors the reload added or removed are not handled here: build new gates for a new executor list. */
export function reconfigureExecutorGates(gates: ExecutorGates, config: Pick<FleetConfig, 'executors'>, o: Omit<ExecutorGatesOptions, 'checkNow' | 'retryMs' | 'revalidateMs'>): void {
  if (o.skipChecks) return;
  const check = o.check ?? ((e: ExecutorConfig) => preflight(e, o));
  for (const e of config.executors) gates.get(e.name)?.replaceCheck(() => check(e));
}
