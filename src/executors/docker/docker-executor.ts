// The `docker` style: the job runs in containers on the machine, reached over SSH like the shell style.
// Predefined stages (sources, cache, artifacts, cleanup) run in the machine's shell, where git, curl and
// zip are; user stages run in the job image; services run beside it on a network of the job's own. The
// machine's builds dir is mounted at the same path in every container, so paths need no translation.
//
// prepare_executor: logins, network, volumes, pulls, services → stages (job-session.ts) → removal by label.
//
// Stages run detached from the connection (build-stage.ts), with the job's records on the machine, so a
// successor coordinator continues a job it finds there (reattach): a prepared job from its running stage; a
// job whose coordinator went before prepare finished is prepared again (what prepare made is removed first).

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
  appendsAfter,
  type Clock,
  type Logger,
  type MachineJobRecord,
  type MachineJobs,
  type Reattacher,
} from '../../core/index.js';
import type { JobContainers } from '../../jobs/index.js';
import { abortOutcome } from '../job-abort.js';
import { runJobSession, type RecordedEnd } from '../job-session.js';
import { DetachedTransport } from '../detached-transport.js';
import { recordHandoff } from '../job-handoff.js';
import { jobDirOf, jobRecordLines, recordEnd, writeCheckpointCommand, type JobFile } from '../job-records.js';
import { PREPARE_CHECKPOINT_EVERY_MS } from '../detached-stage.js';
import { inspectMachine, readResume } from '../machine-jobs.js';
import { shellQuote } from '../remote-shell.js';
import { SshExecutorBase } from '../machine-connections.js';
import type { SshConnection } from '../ssh-connection.js';
import type { SshExecutionOptions } from '../ssh-execution-options.js';
import { guardedRun } from '../guarded-run.js';
import { MachineWatch } from '../machine-watch.js';
import { jobWithCredentialFiles, removeJobCredentials, startJobCredentials, type CredentialsRefresher } from '../credentials-refresher.js';
import { awsFilesOf } from '../aws-credentials-file.js';
import { TraceWriter } from '../trace-lines.js';
import { DockerStageTransport } from './build-stage.js';
import { DockerJob } from './docker-job.js';
import { PrepareFailure, PrepareStopped } from './image-pull.js';
import { hostExec, lastLines, MachineShell } from './machine-shell.js';
import { dockerState, readDockerState } from './job-state.js';
import { removeByLabelScript } from './docker-args.js';
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

export class DockerExecutor extends SshExecutorBase implements Executor, Reattacher {
  readonly style = 'docker' as const;

  constructor(private readonly o: DockerExecutorOptions) {
    super(o);
  }

  run(machine: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome> {
    return guardedRun(machine, ctx, this.clock, this.o.logger, (trace, startedAt, log) => this.runJob(machine, ctx, trace, startedAt, log));
  }

  inspect(machine: ConnectionInfo): Promise<MachineJobs> {
    return inspectMachine(machine, this.connections, this.o.logger);
  }

  reattach(machine: ConnectionInfo, ctx: JobRunContext, record: MachineJobRecord): Promise<JobOutcome> {
    return guardedRun(machine, ctx, this.clock, this.o.logger, (trace, _startedAt, log) => this.runJob(machine, ctx, trace, record.startedAt, log, record));
  }

  private async runJob(machine: ConnectionInfo, ctx: JobRunContext, trace: TraceWriter, startedAt: number, log: Logger, record?: MachineJobRecord): Promise<JobOutcome> {
    // The file form of the job's AWS credentials: the job is told where its AWS config is.
    const job = jobWithCredentialFiles(ctx, machine);
    const found = record ? readDockerState(record.state) : undefined;
    if (record && !found) return failed('runner_system_failure', 'cannot continue the job: its records on the machine are not a docker-style job\'s');
    // Prepared by an earlier coordinator: the trace up to here is regenerated (muted), nothing is prepared again.
    const resumed = found?.prepared ? found : undefined;
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

    let pullAuth: DockerAuthConfig = authConfigFor([]);
    let pushAuth: DockerAuthConfig = authConfigFor([]);
    let secrets: string[] = resumed?.secrets ?? [];
    if (!resumed) {
      try {
        pullAuth = pullAuthConfig(job, (await this.o.registryLogins?.(job)) ?? []);
        pushAuth = authConfigFor((await this.o.pushLogins?.(job)) ?? []);
      } catch (e) {
        return endPrepare(failed('runner_system_failure', `could not get registry logins: ${errorMessage(e)}`));
      }
      secrets = [...pullAuth.secrets, ...pushAuth.secrets];
      for (const w of pullAuth.warnings) trace.warning(w);
    }
    // Masked from here on: the trace never shows a registry password, even if a job prints its config.
    ctx.trace.addSecrets(secrets);

    const deadline = new AbortController();
    const timersOff = new AbortController();
    this.clock.sleep(plan.jobTimeoutMs - (this.clock.now() - startedAt), timersOff.signal).then(() => deadline.abort(), () => undefined);
    // Heartbeat and interruption notice once connected (machine-watch.ts): a notice stops the job like an abort.
    const interruption = new AbortController();
    const credentialsExpired = new AbortController();
    const abort = AbortSignal.any([ctx.abort, interruption.signal, credentialsExpired.signal]);
    const handoff = ctx.handoff?.signal;
    const prepareStop = AbortSignal.any([abort, ctx.cancel, deadline.signal, ...(handoff ? [handoff] : [])]);
    const stoppedOutcome = (): JobOutcome => {
      if (abort.aborted) return abortOutcome(abort.reason);
      if (ctx.cancel.aborted) return failed('job_canceled', 'canceled');
      if (handoff?.aborted) return failed('runner_system_failure', 'handed off before the job was prepared');
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
    const killGraceMs = this.o.killGraceMs ?? 5_000;
    const jobDir = jobDirOf(machine.stateDir, job.id);
    let shell: MachineShell | undefined;
    let dockerJob: DockerJob | undefined;
    let detached: DetachedTransport | undefined;
    let prepared = false;
    let ends: readonly RecordedEnd[] | undefined;
    let refresher: CredentialsRefresher | undefined;
    try {
      refresher = await startJobCredentials(ctx, conn, jobDir, trace, this.clock, log, credentialsExpired);
      if (found && !resumed) {
        // The earlier coordinator went before the job was prepared: what it made goes, and prepare starts over.
        trace.warning('the runner that started this job was replaced before the job was prepared: preparing it again');
        // Appended after the confirmed trace the earlier coordinator recorded; without one, prepare's output is
        // regenerated from the start and cannot match GitLab's copy byte for byte.
        if (!appendsAfter(record!.checkpoint)) trace.checkpoints?.inexact?.();
        const r = await hostExec(conn, `rm -rf ${shellQuote(found.runDir)}\n${removeByLabelScript(job.id)}`, cleanupTimeoutMs);
        if (r.exitCode !== 0) return endPrepare(failed('runner_system_failure', `could not remove what the earlier prepare made: ${lastLines(r.stderr || r.stdout, 3)}`));
      }
      const runDir = resumed?.runDir ?? (await MachineShell.makeRunDir(conn, job.id));
      shell = new MachineShell(conn, runDir, killGraceMs);
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
        ...(refresher && { credentialsDir: awsFilesOf(jobDir).dir }),
        ...(resumed?.job && { resume: resumed.job }),
      });
      if (!resumed) {
        await writeJobRecord(shell, jobDir, { job, startedAt, state: dockerState({ runDir, prepared: false }) });
        const ticker = new AbortController();
        void recordWholeTrace(conn, jobDir, trace, this.clock, ticker.signal);
        try {
          // Prepare starts the job's services (its own images and entrypoints): not before GitLab answered
          // the acknowledgement (JobRunContext.confirmed), which drops or cancels a job by aborting it.
          if (ctx.confirmed) await ctx.confirmed;
          if (prepareStop.aborted) throw new PrepareStopped();
          await dockerJob.prepare(prepareStop);
        } catch (e) {
          if (e instanceof PrepareStopped || prepareStop.aborted) return endPrepare(stoppedOutcome());
          if (e instanceof PrepareFailure) return endPrepare(failed(e.reason, e.message), e.message);
          throw e;
        } finally {
          ticker.abort();
        }
      }
      timersOff.abort();
      prepared = true;
      trace.sectionEnd('prepare_executor');

      const job_ = dockerJob;
      const shell_ = shell;
      const resume = resumed && record ? await readResume(conn, jobDir, record) : undefined;
      detached = new DetachedTransport({
        conn,
        reconnect: () => this.reconnect(machine, log, ctx),
        onConnection: (c) => {
          shell_.conn = c;
          watch.follow(c);
          refresher?.follow(c);
        },
        jobDir,
        job,
        startedAt,
        trace,
        killGraceMs,
        clock: this.clock,
        logger: log,
        jobState: () => dockerState({ runDir, prepared: true, job: job_.state(), secrets }),
        ...(handoff && { detach: handoff }),
        ...(resume && { resume }),
      });
      return await runJobSession({
        plan,
        transport: new DockerStageTransport({
          detached,
          shell,
          prefix: dockerJob.prefix,
          buildContainer: (name) => job_.buildContainer(name),
          beforeUserStages: (before) => job_.handOver(before),
          afterUserStages: (before) => job_.handBack(before),
        }),
        trace,
        cancel: ctx.cancel,
        abort,
        clock: this.clock,
        startedAt,
        cleanupTimeoutMs,
        lateStagesTimeoutMs: this.o.lateStagesTimeoutMs ?? 300_000,
        logger: log,
        ...(resume?.current && { replay: resume.current.ends }),
        ...(resume?.current?.scriptStartedAt !== undefined && { scriptStartedAt: resume.current.scriptStartedAt }),
        ended: (e) => (ends = e),
        ...(ctx.confirmed && { confirmed: ctx.confirmed }),
      });
    } catch (e) {
      if (!prepared) return endPrepare(failed('runner_system_failure', errorMessage(e)));
      return failed('runner_system_failure', errorMessage(e));
    } finally {
      timersOff.abort();
      watch.stop();
      refresher?.stop();
      detached?.close();
      const current = detached?.connection ?? conn;
      if (handoff?.aborted) {
        // Its containers and records stay: the successor follows the running stage (or prepares again).
        await recordHandoff(current, jobDir, trace, ctx.handoff!, log, !resumed && !detached?.launchedAny);
      } else if (!current.lost) {
        await this.tearDown(current, shell, dockerJob, prepared, cleanupTimeoutMs, ctx, trace, log);
        if (ctx.awsCredentials) await removeJobCredentials(current, jobDir, ctx);
        // A job that ended in prepare keeps its unprepared record until GitLab has the result: a successor
        // would prepare it again and reach the same end.
        if (prepared) await recordEnd(current, jobDir, ends, ctx);
      }
      current.close();
      if (current !== conn) conn.close();
    }
  }

  /** Removes the job's containers, network and volumes, then its private directory. */
  private async tearDown(
    conn: SshConnection,
    shell: MachineShell | undefined,
    dockerJob: DockerJob | undefined,
    prepared: boolean,
    cleanupTimeoutMs: number,
    ctx: JobRunContext,
    trace: TraceWriter,
    log: Logger,
  ): Promise<void> {
    if (shell) shell.conn = conn;
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
}

/** While prepare runs (no stage yet), the whole trace GitLab confirmed is the checkpoint a successor appends
 *  after (CheckpointedTrace.whole), recorded when it moved. */
async function recordWholeTrace(conn: SshConnection, jobDir: string, trace: TraceWriter, clock: Clock, stop: AbortSignal): Promise<void> {
  let last = '';
  try {
    for (;;) {
      await clock.sleep(PREPARE_CHECKPOINT_EVERY_MS, stop);
      const c = trace.checkpoints?.whole?.();
      const text = c ? JSON.stringify(c) : '';
      if (!c || text === last || conn.lost) continue;
      last = text;
      await conn.control(writeCheckpointCommand(jobDir, c)).catch(() => undefined);
    }
  } catch {
    /* stopped */
  }
}

/** job.json before prepare (job-records.ts): a successor that finds the job then knows it is unprepared. */
async function writeJobRecord(shell: MachineShell, jobDir: string, file: JobFile): Promise<void> {
  await shell.check(jobRecordLines(jobDir, JSON.stringify(file)).join('\n'), 'could not write the job\'s records on the machine');
}
