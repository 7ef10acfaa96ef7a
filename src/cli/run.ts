// `fleetrunner run`: the composition root. Reads env/config here only, wires the modules, runs the
// coordinator until SIGTERM/SIGINT/SIGQUIT, then drains, removes machines, unregisters and exits 0.

import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RUNNER, type FleetConfig } from '../config/index.js';
import { systemClock } from '../core/clock.js';
import { unpoolSmallBuffers } from '../core/buffer-pool.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CapacityProvider } from '../core/machine.js';
import { DOCKER_EXECUTOR_FEATURES } from '../executors/docker/index.js';
import { SHELL_EXECUTOR_FEATURES } from '../executors/index.js';
import { ExecutorFleet, type FleetCounts } from '../fleet/executor-fleet.js';
import type { Executor, MachineWarmer } from '../core/executor.js';
import {
  buildFeatures,
  buildRunnerInfo,
  buildUserAgent,
  createRunnerApi,
  deploymentIdentity,
  deploymentKeySecret,
  LastUpdateStore,
  RunnerHealth,
  type RunnerFeature,
} from '../gitlab/index.js';
import { PLAN_FEATURES } from '../jobs/index.js';
import { FleetMetrics } from '../metrics/metrics.js';
import { Coordinator, type CoordinatorExecutor } from '../runner/coordinator.js';
import { taskRequestFor } from '../runner/task-request.js';
import { JobJournal } from '../runner/job-journal.js';
import { CUT_OFF_DELIVERY_GRACE_MS } from '../runner/job-run.js';
import { recoverInterruptedJobs } from '../runner/recover.js';
import { takeOverMachines } from '../runner/reattach.js';
import { buildExecutor, buildJobRole } from './executors.js';
import type { JobPayload } from '../core/job.js';
import { executorSpotBreaker } from './spot-breaker.js';
import { createLogger } from './logger.js';
import { REVISION, VERSION } from './version.js';
import { reconfigureExecutorGates, startExecutorGates } from './preflight.js';
import { planReload, type ReloadPlan } from './reload.js';
import { startRunners, type ServedRunner } from './served-runners.js';
import { buildLease } from './lease.js';
import type { Lease } from '../core/lease.js';
import { gitlabJobChannel, gitlabJobFeed } from './wiring.js';
import { CoordinatorHealth } from './health.js';
import { redactedConfig } from './render-config.js';

/** Features GitLab sees: what the job scripts, the executors and the trace pipeline really do. A runner's
 *  token covers every executor it owns, so this is the union over their styles. */
export function advertisedFeatures(styles: ReadonlyArray<'shell' | 'docker'> = ['shell']): RunnerFeature[] {
  const shell = SHELL_EXECUTOR_FEATURES.filter((f) => f !== 'shared'); // machines are per job, not shared
  const docker = styles.includes('docker') ? DOCKER_EXECUTOR_FEATURES : [];
  return [...new Set([...(PLAN_FEATURES as readonly string[]), ...shell, ...docker, 'masking'])] as RunnerFeature[];
}

/** How long past its bootTimeout the fleet lets a machine be on its way to ready before it removes it
 *  (boot_timeout): the provider's own deadline comes first; this one catches a wait that never returns. */
const FLEET_BOOT_DEADLINE_MARGIN_MS = 60_000;

/** How long the job loop waits for the machines an earlier coordinator left to be read back (reattach.ts). */
const TAKEOVER_HEAD_START_MS = 20_000;

function shortToken(token: string): string {
  const body = token.replace(/^glrtr?-/, '');
  return body.slice(0, 8);
}

export interface CoordinatorHandle {
  /** Resolves with the exit code once the coordinator stopped (after `stop()`), or 1 if it could not start. */
  readonly done: Promise<number>;
  /** First call: stop taking jobs and drain; second call: cut running jobs off. */
  stop(): void;
  /** Machines per executor by state (what the metrics report). */
  machines(): Record<string, FleetCounts>;
  /** Applies what a reloaded config may change (see planReload); returns the plan applied. */
  reload(next: FleetConfig): ReloadPlan | undefined;
  /** A reload whose file could not be read or is invalid: logged, the running config stays. */
  reloadFailed(error: unknown): void;
}

export interface StartOptions {
  /** Test/bench seam: the capacity provider of an executor (default: built from its config). */
  providerFor?: (executor: FleetConfig['executors'][number]) => CapacityProvider | undefined;
  logger?: Logger;
  /** Aborted by a stop signal that arrives while start-up still waits for GitLab. */
  startSignal?: AbortSignal;
  /** Test seam: the fleet's lease (default: built from `config.lease`; none configured = held at once). */
  lease?: Lease;
  /** Test seam: whether this runs as an ECS task (default: ECS_CONTAINER_METADATA_URI_V4 is set). */
  onEcs?: boolean;
  /** Where the config came from (a file, $FLEETRUNNER_CONFIG_YAML, ssm:NAME), for the start-up log line. */
  configSource?: string;
}

export async function startCoordinator(config: FleetConfig, opts: StartOptions = {}): Promise<CoordinatorHandle> {
  const clock = systemClock;
  // A coordinator holds an SSH connection per job for hours: no Buffer slab pinned by each.
  unpoolSmallBuffers();
  // The deployment's token names it (ids, machine keys); every runner's token, as configured and as rotated
  // since, is masked in the log and in every job's trace.
  const configuredToken = config.gitlab.token ?? config.gitlab.registrationToken!;
  const configuredTokens = [configuredToken, ...config.runners.flatMap((r) => (r.token === undefined ? [] : [r.token]))];
  let served: ServedRunner[] = [];
  // Every token any runner has had (a legacy runner's is gone from its identity once it unregistered).
  const seenTokens = new Set(configuredTokens);
  const tokens = () => [...seenTokens];
  const logger: Logger = opts.logger ?? createLogger({ level: config.log.level, format: config.log.format, secrets: tokens });
  // What this task runs on, secrets masked: the same text `fleetrunner render-config` prints.
  logger.info({ source: opts.configSource, config: redactedConfig(config) }, 'effective configuration');
  const onEcs = opts.onEcs ?? process.env.ECS_CONTAINER_METADATA_URI_V4 !== undefined;
  if (onEcs && !config.metrics.listen) logger.warn({}, 'metrics.listen is not set: /healthz and /readyz are not served, and the container health check of the image fails');
  const health = new CoordinatorHealth(clock);
  const stateDir = config.stateDir ?? join(homedir(), '.fleetrunner');
  const spoolDir = join(stateDir, 'spool');
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });

  // From the config, not the host: every task of this deployment is the same runner manager in GitLab and
  // owns the same machines; another fleet or token is someone else.
  const { systemId, coordinatorId } = deploymentIdentity({ fleet: config.fleet, gitlabUrl: config.gitlab.url, token: configuredToken });
  // Every task of the deployment derives the same SSH client key for each instance (never logged).
  const keySecret = deploymentKeySecret({ fleet: config.fleet, gitlabUrl: config.gitlab.url, token: configuredToken });
  const styles = config.executors.map((e) => e.style);
  const infoFor = (s: ReadonlyArray<'shell' | 'docker'>) =>
    buildRunnerInfo({ version: VERSION, revision: REVISION, platform: process.platform, arch: process.arch, executor: s.includes('docker') ? 'docker' : 'shell', shell: 'bash', features: buildFeatures(advertisedFeatures(s)) });
  // Job updates of any runner's jobs go through one channel: it speaks for every executor style.
  const info = infoFor(styles);
  const api = createRunnerApi({
    url: config.gitlab.url,
    userAgent: buildUserAgent({ version: VERSION, nodeVersion: process.version, platform: process.platform, arch: process.arch }),
    clock,
    logger,
    lastUpdates: new LastUpdateStore(),
  });
  // The metrics port is taken before GitLab hears of this runner manager: a port in use stops here.
  const metrics = new FleetMetrics();
  let metricsServer: Awaited<ReturnType<FleetMetrics['serve']>> | undefined;
  try {
    metricsServer = config.metrics.listen ? await metrics.serve(config.metrics.listen, health.routes()) : undefined;
  } catch (e) {
    process.stderr.write(`fleetrunner: metrics.listen: cannot listen on ${config.metrics.listen}: ${errorMessage(e)}\n`);
    return { done: Promise.resolve(1), stop: () => undefined, machines: () => ({}), reload: () => undefined, reloadFailed: () => undefined };
  }
  // One active coordinator per fleet (README "One coordinator per fleet"): the lease is held before GitLab
  // hears of this runner manager and before start-up garbage collection touches the fleet's machines.
  const startSignal = opts.startSignal ?? new AbortController().signal;
  const held = await (opts.lease ?? (await buildLease(config, { stateDir, clock, logger }))).acquire(startSignal);
  if (!held) {
    metricsServer?.close();
    logger.info({}, 'stopped while waiting for the lease');
    return { done: Promise.resolve(0), stop: () => undefined, machines: () => ({}), reload: () => undefined, reloadFailed: () => undefined };
  }
  health.holding(held);
  const started = await startRunners(config, { api, clock, logger, systemId, stateDir, infoFor, onToken: (t) => seenTokens.add(t), onPhase: (p) => health.enter(p), signal: AbortSignal.any([startSignal, held.lost]) });
  if (started.kind !== 'started') await held.release();
  if (started.kind === 'unreadable') {
    metricsServer?.close();
    logger.error({ runner: started.runner, err: started.reason }, 'cannot start: the saved runner token cannot be read');
    process.stderr.write(`fleetrunner: ${started.reason}\n`);
    return { done: Promise.resolve(2), stop: () => undefined, machines: () => ({}), reload: () => undefined, reloadFailed: () => undefined };
  }
  if (started.kind === 'refused') {
    metricsServer?.close();
    const which = started.runner === DEFAULT_RUNNER ? '' : ` (runner ${started.runner})`;
    logger.error({ url: config.gitlab.url, runner: started.runner, reason: started.reason }, 'cannot start: GitLab refused the runner');
    process.stderr.write(`fleetrunner: cannot start against ${config.gitlab.url}${which}: ${started.reason}\n`);
    return { done: Promise.resolve(2), stop: () => undefined, machines: () => ({}), reload: () => undefined, reloadFailed: () => undefined };
  }
  if (started.kind === 'stopped') {
    metricsServer?.close();
    logger.info({}, 'stopped before GitLab could be reached');
    return { done: Promise.resolve(held.lost.aborted ? 1 : 0), stop: () => undefined, machines: () => ({}), reload: () => undefined, reloadFailed: () => undefined };
  }
  served = started.runners;
  const runnerOf = (executor: string) => served.find((r) => r.config.executors.includes(executor))!;

  const providers: CapacityProvider[] = [];
  const executors: CoordinatorExecutor[] = config.executors.map((e) => {
    const breaker = executorSpotBreaker(e, clock, logger, metrics);
    const { provider, executor } = buildExecutor(e, {
      config,
      clock,
      logger,
      onDemandOnly: breaker.onDemandOnly,
      shortToken: () => shortToken(runnerOf(e.name).identity.token),
      keySecret,
      ...(opts.providerFor && { providerFor: opts.providerFor }),
    });
    providers.push(provider);
    const fleet = new ExecutorFleet({
      provider,
      tags: { fleet: config.fleet, executor: e.name, coordinator: coordinatorId },
      logger,
      clock,
      maxMachines: e.maxMachines,
      pool: e.pool,
      ...(isWarmer(executor) && { warmer: executor }),
      // The provider ends a boot at bootTimeout itself; the fleet's deadline only catches a wait that never returns.
      bootTimeoutMs: e.bootTimeoutMs + FLEET_BOOT_DEADLINE_MARGIN_MS,
      onMachineRemoved: (executor, reason) => metrics.machinesRemoved.inc({ executor, reason }),
    });
    // On Fargate the role is the task's own (task definition's taskRoleArn): no STS call per job.
    const role = e.provider === 'fargate' ? undefined : buildJobRole(e);
    return {
      name: e.name,
      maxMachines: e.maxMachines,
      executor,
      fleet,
      onInterrupted: breaker.onInterrupted,
      ...(e.match && { match: e.match }),
      ...(role && { jobCredentials: (job: JobPayload) => role.credentialsFor(job) }),
      ...(e.fargate && { taskFor: (job: JobPayload) => taskRequestFor(job, e.fargate!) }),
    };
  });

  const journal = new JobJournal(join(stateDir, 'jobs'));
  const openChannel = gitlabJobChannel({ api, info, clock, logger, metrics, finalUpdateMaxBackoffMs: config.gitlab.finalUpdateMaxBackoffMs });

  // Preflight: each executor's checks (credentials, subnets × instance types, AMI, …) run now and again on a
  // schedule; an executor that fails them takes no jobs until they pass, instead of failing the jobs routed
  // to it. Injected providers (tests, bench) are not described by the config: their gates stay open.
  const gateOptions = (c: FleetConfig) => ({ fleet: c.fleet, clock, logger, skipChecks: opts.providerFor !== undefined });
  const gates = await startExecutorGates(config, gateOptions(config));
  for (const e of executors) {
    const gate = gates.get(e.name);
    if (gate) e.gate = gate;
  }
  // On ECS every deploy replaces the task: hand running jobs and idle machines to the next one.
  const onShutdown = config.onShutdown ?? (onEcs ? 'handoff' : 'drain');
  let takenOver = false;
  const coordinator = new Coordinator({
    concurrent: config.concurrent,
    requestConcurrency: config.requestConcurrency,
    checkIntervalMs: config.checkIntervalMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    onShutdown,
    handoffTimeoutMs: config.handoffTimeoutMs,
    outputLimitBytes: config.outputLimitBytes,
    spoolDir,
    executors,
    runners: served.map((r) => ({
      name: r.config.name,
      feed: gitlabJobFeed({ runner: r.config.name, api, identity: r.identity, health: new RunnerHealth({ clock }), systemId, info: r.info, clock, metrics }),
      executors: r.config.executors,
      requestConcurrency: r.config.requestConcurrency,
    })),
    openChannel,
    journal,
    gitlabUrl: config.gitlab.url,
    clock,
    logger,
    banner: (_job, executor, route, runnerName) => {
      const runner = served.find((r) => r.config.name === runnerName) ?? (executors.some((e) => e.name === executor) ? runnerOf(executor) : served[0]!);
      return `\x1b[0KRunning with fleetrunner ${VERSION} (${REVISION})\x1b[0;m\n\x1b[0K  on ${runner.config.description} ${shortToken(runner.identity.token)}, system ID: ${systemId}\x1b[0;m\n\x1b[0K  executor "${executor}"${route ? ` (${route})` : ''}\x1b[0;m\n`;
    },
    // Every runner token as configured and as rotated since: masked in every job's trace.
    extraSecrets: tokens,
    onJobFinished: (executor, outcome) => metrics.jobsFinished.inc({ executor, outcome }),
    onMachineAcquired: (executor, ms) => metrics.machineAcquireSeconds.observe({ executor }, ms / 1000),
    onLoopWait: health.onLoopWait,
    lease: held,
    maintenance: [
      { name: 'token-rotation', everyMs: 1_000, run: async () => void (await Promise.all(served.map((r) => r.identity.rotateIfDue()))) },
      { name: 'preflight', everyMs: 15_000, run: async () => void (await gates.tick()) },
      // Not before the takeover is over: a machine still being read back is not garbage.
      { name: 'garbage-collection', everyMs: 60_000, run: async () => void (takenOver && (await Promise.all(executors.map((e) => e.fleet.collectGarbage(10 * 60_000))))) },
      { name: 'idle-pool', everyMs: 5_000, run: async () => void (await Promise.all(executors.map((e) => e.fleet.reconcile()))) },
      {
        name: 'metrics',
        everyMs: 5_000,
        run: async () => {
          metrics.jobsRunning.set(coordinator.runningJobs);
          for (const e of executors) metrics.setMachines(e.name, e.fleet.counts());
        },
      },
    ],
  });

  // The machines an earlier coordinator of this deployment left (a handoff, a crash, a kill -9): running
  // jobs are continued from their machines and idle machines join the pool (reattach.ts); what cannot be
  // adopted is removed, and start-up garbage collection then removes whatever else carries our tags.
  health.enter('taking_over');
  // The loop waits for the takeover TAKEOVER_HEAD_START_MS at most: a machine slow to answer (asked again,
  // machine-jobs.ts) must not hold back new work; a job found on it later holds its slots past the caps.
  // Garbage collection and the journal's deliveries wait for the whole takeover.
  const afterTakeover = takeOverMachines({ executors, coordinator, logger }).then(async (takeover) => {
    for (const e of executors) await e.fleet.collectGarbage().catch((err) => logger.warn({ executor: e.name, err: errorMessage(err) }, 'start-up garbage collection failed'));
    takenOver = true;
    // Jobs an earlier run left unreported (on this host's disk, a cache) are delivered beside the loop, never
    // ahead of new work; jobs continued from their machines are theirs to report.
    const r = recoverInterruptedJobs({ journal, gitlabUrl: config.gitlab.url, openChannel, outputLimitBytes: config.outputLimitBytes, spoolFallback: join(spoolDir, 'recovered'), logger, continued: new Set(takeover.jobs) });
    if (r.count > 0) logger.info({ jobs: r.count }, 'delivering the final states an earlier run left');
    return r;
  });
  const headStart = new AbortController();
  await Promise.race([afterTakeover, clock.sleep(TAKEOVER_HEAD_START_MS, headStart.signal).catch(() => undefined)]);
  headStart.abort();

  gates.onChange(() => coordinator.wake());
  // A lost lease: no new jobs at once, running ones drain; the exit code 1 lets the platform start us again.
  let stopRequested = false;
  const onLeaseLost = () => {
    health.enter('stopping');
    coordinator.standDown(`the lease was lost: ${errorMessage(held.lost.reason)}`);
  };
  if (held.lost.aborted) onLeaseLost();
  else held.lost.addEventListener('abort', onLeaseLost, { once: true });
  let running = config;
  health.enter('running');
  if (held.lost.aborted) health.enter('stopping');
  logger.info({ url: config.gitlab.url, systemId, coordinatorId, concurrent: config.concurrent, executors: executors.map((e) => e.name), runners: served.map((r) => ({ name: r.config.name, executors: r.config.executors })), features: advertisedFeatures(styles) }, 'coordinator started');
  const done = (async () => {
    try {
      await coordinator.run();
      const recovery = await afterTakeover;
      // Deliveries of an earlier run's jobs get a short grace at the end; what is left stays journaled.
      const grace = new AbortController();
      await Promise.race([recovery.done, clock.sleep(CUT_OFF_DELIVERY_GRACE_MS, grace.signal).catch(() => undefined)]);
      grace.abort();
      recovery.abandon();
      await recovery.done;
    } finally {
      // Handed off: the machines (running jobs, idle pool) and the runner manager are the successor's.
      const handedOff = coordinator.handedOff;
      if (!handedOff) for (const e of executors) await e.fleet.releaseAll().catch((err) => logger.error({ executor: e.name, err: errorMessage(err) }, 'could not remove machines at shutdown'));
      for (const p of providers) await p.shutdown().catch(() => undefined);
      // A coordinator that lost the lease shares its runner manager (the same system_id) with the one that
      // took over: deleting it would pull the manager out from under the successor.
      if (held.lost.aborted) logger.info({}, 'lease lost: leaving the runner manager to the coordinator that holds it');
      else if (handedOff) logger.info({}, 'handed off: leaving the machines and the runner manager to the successor');
      else await Promise.all(served.map((r) => r.identity.stop().catch((err) => logger.warn({ runner: r.config.name, err: errorMessage(err) }, 'could not unregister from GitLab'))));
      // A legacy runner registers anew at each start: the token it was given is of no use to the next one.
      const legacy = served.find((r) => r.config.token === undefined && config.gitlab.registrationToken !== undefined);
      if (legacy) await legacy.rotated.clear().catch((err) => logger.warn({ where: legacy.rotated.where, err: errorMessage(err) }, 'could not remove the saved runner token'));
      metricsServer?.close();
      await held.release();
      logger.info({}, 'coordinator stopped');
    }
    return held.lost.aborted && !stopRequested ? 1 : 0;
  })();
  return {
    done,
    stop: () => {
      stopRequested = true;
      health.enter('stopping');
      logger.info({}, 'stop requested');
      coordinator.stop();
    },
    machines: () => Object.fromEntries(executors.map((e) => [e.name, e.fleet.counts()])),
    reload(next) {
      const plan = planReload(running, next);
      coordinator.reconfigure(plan);
      for (const e of plan.executors) executors.find((x) => x.name === e.name)?.fleet.reconfigure({ maxMachines: e.maxMachines, pool: e.pool });
      running = {
        ...running,
        concurrent: plan.concurrent,
        executors: running.executors.map((e) => {
          const n = plan.executors.find((x) => x.name === e.name);
          if (!n) return e;
          const { match: _old, ...rest } = e;
          return { ...rest, maxMachines: n.maxMachines, pool: n.pool, ...(n.match && { match: n.match }) };
        }),
      };
      // The checks re-run at once against the config in force (not the file's restart-only changes): an
      // operator who fixed a permission can send SIGHUP instead of waiting for the next re-check.
      reconfigureExecutorGates(gates, running, gateOptions(running));
      logger.info({ changed: plan.changed, concurrent: plan.concurrent }, plan.changed.length ? 'config reloaded' : 'config reloaded: nothing to change');
      if (plan.needsRestart.length) logger.warn({ keys: plan.needsRestart }, 'config reload: these changes need a restart and were not applied');
      return plan;
    },
    reloadFailed(e) {
      logger.error({ err: errorMessage(e) }, 'config reload failed: the running config stays in force');
    },
  };
}

function isWarmer(executor: Executor): executor is Executor & MachineWarmer {
  const e = executor as Partial<MachineWarmer>;
  return typeof e.warm === 'function' && typeof e.cool === 'function';
}
