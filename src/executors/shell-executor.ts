// The `shell` style: the job's stage scripts run in the machine's bash over SSH. One connection per job,
// always closed at the end; the stage sequencing lives in job-session.ts.

import { randomBytes } from 'node:crypto';

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
} from '../core/index.js';
import { joinStages } from '../jobs/index.js';
import { abortOutcome } from './job-abort.js';
import { runJobSession, type StageTransport } from './job-session.js';
import { StageShells, runRemoteStage, shellQuote } from './remote-shell.js';
import { SshExecutorBase } from './machine-connections.js';
import type { SshConnection } from './ssh-connection.js';
import type { SshExecutionOptions } from './ssh-execution-options.js';
import { guardedRun } from './guarded-run.js';
import { MachineWatch } from './machine-watch.js';
import { TraceWriter } from './trace-lines.js';

export interface ShellExecutorOptions extends SshExecutionOptions {
  /** Builds the stage scripts for a job (src/jobs); the machine gives builds and cache dirs. */
  planFor(job: JobPayload, machine: ConnectionInfo): JobPlan | Promise<JobPlan>;
}

const STAGE_FILE_SAFE = /[^A-Za-z0-9_.-]/g;

export class ShellExecutor extends SshExecutorBase implements Executor {
  readonly style = 'shell' as const;

  constructor(private readonly o: ShellExecutorOptions) {
    super(o);
  }

  run(machine: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome> {
    return guardedRun(machine, ctx, this.clock, this.o.logger, (trace, startedAt, log) => this.runJob(machine, ctx, trace, startedAt, log));
  }

  private async runJob(
    machine: ConnectionInfo,
    ctx: JobRunContext,
    trace: TraceWriter,
    startedAt: number,
    log: Logger,
  ): Promise<JobOutcome> {
    trace.sectionStart('prepare_executor', 'Preparing the "shell" executor');
    trace.line('Using SSH executor...');

    let plan: JobPlan;
    try {
      const built = await this.o.planFor(ctx.job, machine);
      // One remote shell for all the predefined stages before the user's script: a stage costs a process
      // start and a round trip, and these share their bounds and their stop-at-first-failure rule.
      plan = built.prepare.length > 1 ? { ...built, prepare: [joinStages(built.prepare)] } : built;
    } catch (e) {
      trace.sectionEnd('prepare_executor');
      const reason = e instanceof ConfigError ? 'runner_configuration_error' : 'runner_system_failure';
      return failed(reason, errorMessage(e));
    }

    // Graceful cancel before any stage ran means there is nothing to wind down: stop connecting too.
    const connectStop = AbortSignal.any([ctx.abort, ctx.cancel]);
    let conn: SshConnection;
    try {
      conn = await this.connections.connect(machine, log, connectStop);
    } catch (e) {
      trace.sectionEnd('prepare_executor');
      if (ctx.abort.aborted) return abortOutcome(ctx.abort.reason);
      if (ctx.cancel.aborted) return failed('job_canceled', 'canceled');
      return failed('runner_system_failure', errorMessage(e));
    }

    let runDir: string | undefined;
    const shells = new StageShells(conn);
    // Heartbeat and interruption notice while the job runs: a notice stops the stages like an abort.
    const watch = new MachineWatch(conn, machine.stateDir, { clock: this.clock, logger: log });
    const abort = AbortSignal.any([ctx.abort, watch.interrupted]);
    try {
      // The first stage's shell starts now; an idle-pool connection already knows the temporary directory.
      shells.prefetch();
      // A private directory for the stages' pid files, made by the first stage.
      runDir = `${await conn.remoteTmpDir()}/fleetrunner-job-${ctx.job.id}-${randomBytes(4).toString('hex')}`;
      // "Running on <host> via <executor>..." comes from the plan's prepare_script, as in gitlab-runner.
      trace.sectionEnd('prepare_executor');

      const transport = this.transport(conn, shells, runDir, trace);
      return await runJobSession({
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
      });
    } catch (e) {
      if (!runDir) trace.sectionEnd('prepare_executor');
      return failed('runner_system_failure', errorMessage(e));
    } finally {
      watch.stop();
      shells.close();
      if (runDir && !conn.lost) {
        await conn.output(`rm -rf ${shellQuote(runDir)}`).catch((e: unknown) => ctx.markUnclean?.(`could not remove ${runDir}: ${errorMessage(e)}`));
      }
      conn.close();
    }
  }

  private transport(conn: SshConnection, shells: StageShells, runDir: string, trace: TraceWriter): StageTransport {
    let n = 0;
    return {
      runStage: (stage, stop) =>
        runRemoteStage({
          conn,
          channel: shells.take(),
          // The first stage makes the run directory and refuses one that exists; later stages make it only
          // if the first never got to (its channel failed, or it was stopped before it started).
          makeDir: runDir,
          dirMayExist: n > 0,
          script: stage.script,
          pidFile: `${runDir}/${++n}-${stage.name.replace(STAGE_FILE_SAFE, '_')}.pid`,
          trace,
          stop,
          killGraceMs: this.o.killGraceMs ?? 5_000,
        }),
    };
  }
}
