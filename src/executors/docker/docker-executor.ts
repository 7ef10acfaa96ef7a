// The `docker` style: the job runs in containers on the machine, reached over SSH like the shell style.
// Predefined stages (sources, cache, artifacts, cleanup) run in the machine's shell, where git, curl and
// zip are; user stages run in the job image; services run beside it on a network of the job's own. The
// machine's builds dir is mounted at the same path in every container, so paths need no translation.
//
// prepare_executor: logins, network, volumes, pulls, services → stages (job-session.ts) → removal by label.

import {
  ConfigError,
  errorMessage,
  failed,
  type ConnectionInfo,
  type Executor,
  type JobOutcome,
  type JobPayload,
  type JobPlan,
  type JobRunContext,
  type Logger,
} from '../../core/index.js';
import type { JobContainers } from '../../jobs/index.js';
import { abortOutcome } from '../job-abort.js';
import { runJobSession } from '../job-session.js';
import { shellQuote } from '../remote-shell.js';
import { SshExecutorBase } from '../machine-connections.js';
import type { SshConnection } from '../ssh-connection.js';
import type { SshExecutionOptions } from '../ssh-execution-options.js';
import { guardedRun } from '../guarded-run.js';
import { MachineWatch } from '../machine-watch.js';
import { TraceWriter } from '../trace-lines.js';
import { DockerStageTransport } from './build-stage.js';
import { DockerJob } from './docker-job.js';
import { PrepareFailure, PrepareStopped } from './image-pull.js';
import { MachineShell } from './machine-shell.js';
import type { DockerStyleSettings, RegistryLogin } from './options.js';
import { authConfigFor, pullAuthConfig, type DockerAuthConfig } from './registry-auth.js';

export interface DockerExecutorOptions extends SshExecutionOptions {
  /** Builds the stage scripts for a job (src/jobs `buildPlan`); the machine gives builds and cache dirs. */
  planFor(job: JobPayload, machine: ConnectionInfo): JobPlan | Promise<JobPlan>;
  /** The job's image, services and container environment (src/jobs `jobContainers`, same PlanContext). */
  containersFor(job: JobPayload, machine: ConnectionInfo): JobContainers;
  /** The executor's `docker:` config (DockerStyleConfig). */
  docker: DockerStyleSettings;
  /** The executor's `privileged` (never from the job). */
  privileged: boolean;
  /** Extra logins for pulling the job's images (e.g. ECR registries from config). Default: none. */
  registryLogins?(job: JobPayload): Promise<RegistryLogin[]>;
  /** Logins handed to the job's own Docker client (DinD `docker push`). Default: none. */
  pushLogins?(job: JobPayload): Promise<RegistryLogin[]>;
}

export class DockerExecutor extends SshExecutorBase implements Executor {
  readonly style = 'docker' as const;

  constructor(private readonly o: DockerExecutorOptions) {
    super(o);
  }

  run(machine: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome> {
    return guardedRun(machine, ctx, this.clock, this.o.logger, (trace, startedAt, log) => this.runJob(machine, ctx, trace, startedAt, log));
  }

  private async runJob(machine: ConnectionInfo, ctx: JobRunContext, trace: TraceWriter, startedAt: number, log: Logger): Promise<JobOutcome> {
    const { job } = ctx;
    trace.sectionStart('prepare_executor', 'Preparing the "docker" executor');
    const endPrepare = (outcome: JobOutcome, message?: string): JobOutcome => {
      if (message !== undefined) trace.error(message);
      trace.sectionEnd('prepare_executor');
      return outcome;
    };

    let plan: JobPlan;
    let containers: JobContainers;
    try {
      plan = await this.o.planFor(job, machine);
      containers = this.o.containersFor(job, machine);
    } catch (e) {
      return endPrepare(failed(e instanceof ConfigError ? 'runner_configuration_error' : 'runner_system_failure', errorMessage(e)));
    }
    trace.line(`Using Docker executor with image ${containers.image?.name || this.o.docker.defaultImage} ...`);

    let pullAuth: DockerAuthConfig;
    let pushAuth: DockerAuthConfig;
    try {
      pullAuth = pullAuthConfig(job, (await this.o.registryLogins?.(job)) ?? []);
      pushAuth = authConfigFor((await this.o.pushLogins?.(job)) ?? []);
    } catch (e) {
      return endPrepare(failed('runner_system_failure', `could not get registry logins: ${errorMessage(e)}`));
    }
    // Masked from here on: the trace never shows a registry password, even if a job prints its config.
    ctx.trace.addSecrets([...pullAuth.secrets, ...pushAuth.secrets]);
    for (const w of pullAuth.warnings) trace.warning(w);

    const deadline = new AbortController();
    const timersOff = new AbortController();
    this.clock.sleep(plan.jobTimeoutMs, timersOff.signal).then(() => deadline.abort(), () => undefined);
    // Heartbeat and interruption notice once connected (machine-watch.ts): a notice stops the job like an abort.
    const interruption = new AbortController();
    const abort = AbortSignal.any([ctx.abort, interruption.signal]);
    const prepareStop = AbortSignal.any([abort, ctx.cancel, deadline.signal]);
    const stoppedOutcome = (): JobOutcome => {
      if (abort.aborted) return abortOutcome(abort.reason);
      if (ctx.cancel.aborted) return failed('job_canceled', 'canceled');
      return failed('job_execution_timeout', `execution took longer than ${Math.round(plan.jobTimeoutMs / 1000)} seconds`);
    };

    let conn: SshConnection;
    try {
      conn = await this.connections.connect(machine, log, prepareStop);
    } catch (e) {
      timersOff.abort();
      return endPrepare(prepareStop.aborted ? stoppedOutcome() : failed('runner_system_failure', errorMessage(e)));
    }

    const watch = new MachineWatch(conn, machine.stateDir, { clock: this.clock, logger: log });
    watch.interrupted.addEventListener('abort', () => interruption.abort(watch.interrupted.reason), { once: true });
    const cleanupTimeoutMs = this.o.cleanupTimeoutMs ?? 60_000;
    let shell: MachineShell | undefined;
    let dockerJob: DockerJob | undefined;
    let prepared = false;
    try {
      const runDir = await MachineShell.makeRunDir(conn, job.id);
      shell = new MachineShell(conn, runDir, this.o.killGraceMs ?? 5_000);
      dockerJob = new DockerJob({
        shell,
        trace,
        settings: this.o.docker,
        privileged: this.o.privileged,
        job,
        containers,
        buildsDir: machine.buildsDir,
        projectDir: plan.projectDir,
        pullAuth,
        pushAuth,
      });
      try {
        await dockerJob.prepare(prepareStop);
      } catch (e) {
        if (e instanceof PrepareStopped || prepareStop.aborted) return endPrepare(stoppedOutcome());
        if (e instanceof PrepareFailure) return endPrepare(failed(e.reason, e.message), e.message);
        throw e;
      } finally {
        timersOff.abort();
      }
      prepared = true;
      trace.sectionEnd('prepare_executor');

      const job_ = dockerJob;
      return await runJobSession({
        plan,
        transport: new DockerStageTransport({
          shell,
          trace,
          prefix: dockerJob.prefix,
          buildContainer: (name) => job_.buildContainer(name),
          killGraceMs: this.o.killGraceMs ?? 5_000,
          beforeUserStages: () => job_.handOver(),
          afterUserStages: () => job_.handBack(),
        }),
        trace,
        cancel: ctx.cancel,
        abort,
        clock: this.clock,
        startedAt,
        cleanupTimeoutMs,
        lateStagesTimeoutMs: this.o.lateStagesTimeoutMs ?? 300_000,
        logger: log,
      });
    } catch (e) {
      if (!prepared) return endPrepare(failed('runner_system_failure', errorMessage(e)));
      return failed('runner_system_failure', errorMessage(e));
    } finally {
      timersOff.abort();
      watch.stop();
      if (!conn.lost) {
        if (dockerJob) {
          const problem = await dockerJob.teardown(cleanupTimeoutMs, prepared).catch((e: unknown) => {
            log.warn({ err: errorMessage(e) }, 'could not remove the job\'s containers');
            trace.warning(`could not remove the job's containers: ${errorMessage(e)}`);
            ctx.markUnclean?.(`could not remove the job's containers: ${errorMessage(e)}`);
            return undefined;
          });
          if (problem !== undefined) {
            log.warn({ problem }, 'teardown');
            trace.warning(problem);
            ctx.markUnclean?.(problem);
          }
        }
        if (shell) {
          const runDir = shell.runDir;
          await shell.exec(`rm -rf ${shellQuote(runDir)}`).catch((e: unknown) => ctx.markUnclean?.(`could not remove ${runDir}: ${errorMessage(e)}`));
        }
      }
      conn.close();
    }
  }
}
