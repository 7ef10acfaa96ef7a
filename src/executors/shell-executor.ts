// The `shell` style: the job's stage scripts run in the machine's bash over SSH. One connection per job,
// always closed at the end; the stage sequencing lives in job-session.ts.

import {
  ConfigError,
  errorMessage,
  failed,
  type ConnectionInfo,
  type Executor,
  type MachineJobRecord,
  type MachineJobs,
  type Reattacher,
  type JobOutcome,
  type JobPayload,
  type JobPlan,
  type JobRunContext,
  type Logger,
} from '../core/index.js';
import { joinStages } from '../jobs/index.js';
import { abortOutcome } from './job-abort.js';
import { runJobSession, type RecordedEnd } from './job-session.js';
import { DetachedTransport } from './detached-transport.js';
import { jobDirOf, recordEnd } from './job-records.js';
import { recordHandoff } from './job-handoff.js';
import { inspectMachine, readResume } from './machine-jobs.js';
import { SshExecutorBase } from './machine-connections.js';
import type { SshConnection } from './ssh-connection.js';
import type { SshExecutionOptions } from './ssh-execution-options.js';
import { guardedRun } from './guarded-run.js';
import { MachineWatch } from './machine-watch.js';
import { jobWithCredentialFiles, removeJobCredentials, startJobCredentials, type CredentialsRefresher } from './credentials-refresher.js';
import { TraceWriter } from './trace-lines.js';

export interface ShellExecutorOptions extends SshExecutionOptions {
  /** Builds the stage scripts for a job (src/jobs); the machine gives builds and cache dirs. */
  planFor(job: JobPayload, machine: ConnectionInfo): JobPlan | Promise<JobPlan>;
}

export class ShellExecutor extends SshExecutorBase implements Executor, Reattacher {
  readonly style = 'shell' as const;

  constructor(private readonly o: ShellExecutorOptions) {
    super(o);
  }

  run(machine: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome> {
    return guardedRun(machine, ctx, this.clock, this.o.logger, (trace, startedAt, log) => this.runJob(machine, ctx, trace, startedAt, log));
  }

  async inspect(machine: ConnectionInfo): Promise<MachineJobs> {
    return inspectMachine(machine, this.connections, this.o.logger);
  }

  reattach(machine: ConnectionInfo, ctx: JobRunContext, record: MachineJobRecord): Promise<JobOutcome> {
    return guardedRun(machine, ctx, this.clock, this.o.logger, (trace, _startedAt, log) => this.runJob(machine, ctx, trace, record.startedAt, log, record));
  }

  /** The job's connection: a graceful cancel before any stage ran means there is nothing to wind down, so
   *  it stops connecting too. (A method of its own: the signal made for it is not kept for the whole job.) */
  private connect(machine: ConnectionInfo, log: Logger, ctx: JobRunContext): Promise<SshConnection> {
    return this.connections.connect(machine, log, AbortSignal.any([ctx.abort, ctx.cancel]));
  }

  private async runJob(
    machine: ConnectionInfo,
    ctx: JobRunContext,
    trace: TraceWriter,
    startedAt: number,
    log: Logger,
    record?: MachineJobRecord,
  ): Promise<JobOutcome> {
    trace.sectionStart('prepare_executor', 'Preparing the "shell" executor');
    trace.line('Using SSH executor...');

    // The file form of the job's AWS credentials: the job is told where its AWS config is.
    const job = jobWithCredentialFiles(ctx, machine);
    let plan: JobPlan;
    try {
      const built = await this.o.planFor(job, machine);
      // One remote shell for all the predefined stages before the user's script: a stage costs a process
      // start and a round trip, and these share their bounds and their stop-at-first-failure rule.
      plan = built.prepare.length > 1 ? { ...built, prepare: [joinStages(built.prepare)] } : built;
    } catch (e) {
      trace.sectionEnd('prepare_executor');
      const reason = e instanceof ConfigError ? 'runner_configuration_error' : 'runner_system_failure';
      return failed(reason, errorMessage(e));
    }

    let conn: SshConnection;
    try {
      conn = await this.connect(machine, log, ctx);
    } catch (e) {
      trace.sectionEnd('prepare_executor');
      if (ctx.abort.aborted) return abortOutcome(ctx.abort.reason);
      if (ctx.cancel.aborted) return failed('job_canceled', 'canceled');
      return failed('runner_system_failure', errorMessage(e));
    }

    // The job's records and its stages' files live in the machine's state directory (job-records.ts).
    const jobDir = jobDirOf(machine.stateDir, ctx.job.id);
    let transport: DetachedTransport | undefined;
    // Heartbeat and interruption notice while the job runs: a notice stops the stages like an abort.
    const watch = new MachineWatch(conn, machine.stateDir, { clock: this.clock, logger: log });
    let ends: readonly RecordedEnd[] | undefined;
    let refresher: CredentialsRefresher | undefined;
    try {
      refresher = await startJobCredentials(ctx, conn, jobDir, trace, this.clock, log);
      // What stops every stage at once: an abort, the machine's interruption notice, or the job's AWS
      // credentials no longer renewed. (A signal of its own for the last only when the job has them: a
      // signal is ~0.8 KiB a job, held as long as the job.)
      const abort = AbortSignal.any([ctx.abort, watch.interrupted, ...(refresher ? [refresher.expired] : [])]);
      const resume = record ? await readResume(conn, jobDir, record) : undefined;
      transport = new DetachedTransport({
        conn,
        reconnect: () => this.reconnect(machine, log, ctx),
        jobDir,
        job,
        startedAt,
        trace,
        killGraceMs: this.o.killGraceMs ?? 5_000,
        clock: this.clock,
        logger: log,
        onConnection: (c) => {
          watch.follow(c);
          refresher?.follow(c);
        },
        ...(ctx.handoff && { detach: ctx.handoff.signal }),
        ...(resume && { resume }),
      });
      // The job's own commands wait for GitLab's answer to the acknowledgement (JobRunContext.confirmed):
      // its get_sources hooks run in the prepare stage, which otherwise starts at once.
      if (ctx.confirmed && job.hooks.some((h) => h.script.length > 0)) await ctx.confirmed;
      // The first stage's shell starts now; an idle-pool connection already knows the temporary directory.
      transport.prefetch();
      // "Running on <host> via <executor>..." comes from the plan's prepare_script, as in gitlab-runner.
      trace.sectionEnd('prepare_executor');

      const outcome = await runJobSession({
        plan,
        transport,
        trace,
        cancel: ctx.cancel,
        abort,
        clock: this.clock,
        startedAt,
        cleanupTimeoutMs: this.o.cleanupTimeoutMs ?? 60_000,
        lateStagesTimeoutMs: this.o.lateStagesTimeoutMs ?? 300_000,
        logger: log,
        ...(resume?.current && { replay: resume.current.ends }),
        ...(resume?.current?.scriptStartedAt !== undefined && { scriptStartedAt: resume.current.scriptStartedAt }),
        ended: (e) => (ends = e),
        ...(ctx.confirmed && { confirmed: ctx.confirmed }),
      });
      return outcome;
    } catch (e) {
      if (!transport) trace.sectionEnd('prepare_executor');
      return failed('runner_system_failure', errorMessage(e));
    } finally {
      watch.stop();
      refresher?.stop();
      transport?.close();
      const current = transport?.connection ?? conn;
      if (ctx.handoff?.signal.aborted) {
        await recordHandoff(current, jobDir, trace, ctx.handoff, log);
      } else if (!current.lost) {
        if (ctx.awsCredentials) await removeJobCredentials(current, jobDir, ctx);
        await recordEnd(current, jobDir, ends, ctx);
      }
      // Open until the records go (forget), right after GitLab took the result.
      current.close();
    }
  }
}
