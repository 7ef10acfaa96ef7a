// Builds each configured executor: its capacity provider (local sshd machines or EC2 instances), its
// execution style (shell or docker), and what the job scripts need from AWS (S3 cache URLs, ECR logins).

import type { ExecutorConfig, FleetConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Executor } from '../core/executor.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import type { CapacityProvider, ConnectionInfo } from '../core/machine.js';
import { DockerExecutor } from '../executors/docker/index.js';
import { ShellExecutor } from '../executors/index.js';
import { buildPlan, cacheRequest, jobContainers, type PlanContext } from '../jobs/index.js';
import { createAwsClients, createEcrClient, createS3Client, createStsClient } from '../providers/aws/clients.js';
import { JobRole } from '../providers/aws/sts-job-role.js';
import { EcrLogins } from '../providers/aws/ecr.js';
import { S3CacheSigner } from '../providers/aws/s3-cache.js';
import { Ec2Provider } from '../providers/ec2/index.js';
import { LocalProvider } from '../providers/local/index.js';
import { REVISION, VERSION } from './version.js';

export interface ExecutorParts {
  provider: CapacityProvider;
  executor: Executor;
}

/** The executor's `jobRole`: each job's own STS credentials (undefined without one). */
export function buildJobRole(e: ExecutorConfig): JobRole | undefined {
  if (!e.jobRole) return undefined;
  const { stsRegion, ...role } = e.jobRole;
  return new JobRole(createStsClient(stsRegion !== undefined ? { region: stsRegion } : {}), role);
}

export interface ExecutorFactoryDeps {
  config: FleetConfig;
  clock: Clock;
  logger: Logger;
  /** The runner's short token (CI_RUNNER_SHORT_TOKEN), read per job: rotation changes it. */
  shortToken: () => string;
  /** The deployment's machine key secret (deploymentKeySecret): EC2 client keys are derived from it. */
  keySecret: Uint8Array;
  providerFor?: (e: ExecutorConfig) => CapacityProvider | undefined;
  /** The executor's spot circuit breaker (cli/spot-breaker.ts): EC2 launches on-demand while it is open. */
  onDemandOnly?: () => boolean;
}

export function buildExecutor(e: ExecutorConfig, d: ExecutorFactoryDeps): ExecutorParts {
  const provider = d.providerFor?.(e) ?? buildProvider(e, d);
  const signer = e.cache?.s3
    ? new S3CacheSigner({
        s3: createS3Client({
          ...(e.cache.s3.region ?? e.ec2?.region ? { region: e.cache.s3.region ?? e.ec2?.region } : {}),
          ...(e.cache.s3.endpoint !== undefined && { endpoint: e.cache.s3.endpoint }),
          forcePathStyle: e.cache.s3.forcePathStyle,
        }),
        config: e.cache.s3,
        clock: d.clock,
      })
    : undefined;

  const context = (machine: ConnectionInfo): PlanContext => ({
    buildsDir: machine.buildsDir,
    cacheDir: machine.cacheDir,
    gitlabUrl: d.config.gitlab.machineUrl,
    runner: { version: VERSION, revision: REVISION, shortToken: d.shortToken(), executorName: e.name, concurrentId: 0, platform: process.platform, arch: process.arch },
    environment: { ...e.environment },
    sharedEnvironment: false,
    afterScriptTimeoutMs: e.afterScriptTimeoutMs,
  });
  const planFor = async (job: JobPayload, machine: ConnectionInfo) => {
    const ctx = context(machine);
    // Ephemeral machines lose their disk: with an S3 cache the machine gets presigned URLs for this job's keys.
    if (signer) ctx.cacheStore = await signer.presignFor(cacheRequest(job, ctx));
    return buildPlan(job, ctx);
  };

  if (e.style === 'shell') {
    return { provider, executor: new ShellExecutor({ planFor, logger: d.logger, clock: d.clock, connectTimeoutMs: e.bootTimeoutMs }) };
  }
  const ecr = e.ecr && (e.ecr.pullRegistries.length || e.ecr.pushRegistries.length) ? new EcrLogins({ ecr: (region) => createEcrClient({ region }), clock: d.clock, logger: d.logger }) : undefined;
  const logins = (registries: readonly string[]) => async () => (ecr && registries.length ? ecr.loginFor(registries) : []);
  return {
    provider,
    executor: new DockerExecutor({
      planFor,
      containersFor: (job, machine) => jobContainers(job, context(machine)),
      docker: e.docker!,
      privileged: e.privileged,
      registryLogins: logins(e.ecr?.pullRegistries ?? []),
      pushLogins: logins(e.ecr?.pushRegistries ?? []),
      logger: d.logger,
      clock: d.clock,
      connectTimeoutMs: e.bootTimeoutMs,
    }),
  };
}

function buildProvider(e: ExecutorConfig, d: ExecutorFactoryDeps): CapacityProvider {
  if (e.provider === 'ec2') {
    const clients = createAwsClients(e.ec2!.region !== undefined ? { region: e.ec2!.region } : {});
    return new Ec2Provider({
      clients,
      config: e.ec2!,
      executor: e.name,
      fleet: d.config.fleet,
      bootTimeoutMs: e.bootTimeoutMs,
      keySecret: d.keySecret,
      clock: d.clock,
      logger: d.logger,
      ...(d.onDemandOnly && { onDemandOnly: d.onDemandOnly }),
    });
  }
  return new LocalProvider({
    fleet: d.config.fleet,
    network: e.local?.network ?? 'loopback',
    bootTimeoutMs: e.bootTimeoutMs,
    logger: d.logger,
    ...(e.local?.root !== undefined && { root: e.local.root }),
    ...(e.local?.jobUser !== undefined && { jobUser: e.local.jobUser }),
    // The docker style runs `docker` on the machine; the shell style must not have it (root-equivalent).
    dockerGroup: e.style === 'docker',
  });
}
