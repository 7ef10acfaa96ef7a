// The `shell` style: the job's stage scripts run in the machine's bash over SSH. One connection per job,
// always closed at the end; the stage sequencing lives in job-session.ts.

import { randomBytes } from 'node:crypto';

import {
  ConfigError,
  errorMessage,
  failed,
  systemClock,
  type Clock,
  type ConnectionInfo,
  type Executor,
  type JobOutcome,
  type JobPayload,
  type JobPlan,
  type JobRunContext,
  type Logger,
} from '../core/index.js';
import { abortOutcome } from './job-abort.js';
import { runJobSession, type StageTransport } from './job-session.js';
import { channelExit, runRemoteStage, shellQuote } from './remote-shell.js';
import { connectSsh, type SshConnection } from './ssh-connection.js';
import type { SshExecutionOptions } from './ssh-execution-options.js';
import { guardedRun } from './guarded-run.js';
import { TraceWriter } from './trace-lines.js';

export interface ShellExecutorOptions extends SshExecutionOptions {
  /** Builds the stage scripts for a job (src/jobs); the machine gives builds and cache dirs. */
  planFor(job: JobPayload, machine: ConnectionInfo): JobPlan | Promise<JobPlan>;
}

const STAGE_FILE_SAFE = /[^A-Za-z0-9_.-]/g;

export class ShellExecutor implements Executor {
  readonly style = 'shell' as const;
  private readonly clock: Clock;

  constructor(private readonly o: ShellExecutorOptions) {
    this.clock = o.clock ?? systemClock;
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
      plan = await this.o.planFor(ctx.job, machine);
    } catch (e) {
      trace.sectionEnd('prepare_executor');
      const reason = e instanceof ConfigError ? 'runner_configuration_error' : 'runner_system_failure';
      return failed(reason, errorMessage(e));
    }

    // Graceful cancel before any stage ran means there is nothing to wind down: stop connecting too.
    const connectStop = AbortSignal.any([ctx.abort, ctx.cancel]);
    let conn: SshConnection;
    try {
      conn = await connectSsh(machine, {
        connectTimeoutMs: this.o.connectTimeoutMs,
        keepaliveIntervalMs: this.o.keepaliveIntervalMs ?? 5_000,
        keepaliveCountMax: this.o.keepaliveCountMax ?? 3,
        clock: this.clock,
        logger: log,
        signal: connectStop,
      });
    } catch (e) {
      trace.sectionEnd('prepare_executor');
      if (ctx.abort.aborted) return abortOutcome(ctx.abort.reason);
      if (ctx.cancel.aborted) return failed('job_canceled', 'canceled');
      return failed('runner_system_failure', errorMessage(e));
    }

    let runDir: string | undefined;
    try {
      // "Running on <host> via <executor>..." comes from the plan's prepare_script, as in gitlab-runner.
      runDir = await this.makeRunDir(conn, ctx.job.id);
      trace.sectionEnd('prepare_executor');

      const transport = this.transport(conn, runDir, trace);
      return await runJobSession({
        plan,
        transport,
        trace,
        cancel: ctx.cancel,
        abort: ctx.abort,
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
      if (runDir && !conn.lost) await this.exec(conn, `rm -rf ${shellQuote(runDir)}`).catch(() => undefined);
      conn.close();
    }
  }

  private transport(conn: SshConnection, runDir: string, trace: TraceWriter): StageTransport {
    let n = 0;
    return {
      runStage: (stage, stop) =>
        runRemoteStage({
          conn,
          script: stage.script,
          pidFile: `${runDir}/${++n}-${stage.name.replace(STAGE_FILE_SAFE, '_')}.pid`,
          trace,
          stop,
          killGraceMs: this.o.killGraceMs ?? 5_000,
        }),
    };
  }

  /** Creates the job's private directory for stage pid files in the machine's $TMPDIR; returns its path. */
  private async makeRunDir(conn: SshConnection, jobId: number): Promise<string> {
    const name = `fleetrunner-job-${jobId}-${randomBytes(4).toString('hex')}`;
    const out = await this.exec(conn, `d="\${TMPDIR:-/tmp}/${name}" && mkdir -m 700 "$d" && printf '%s\\n' "$d"`);
    const runDir = out.split('\n')[0] ?? '';
    if (!runDir.startsWith('/')) throw new Error(`could not prepare the machine: ${out.trim() || 'no output'}`);
    return runDir;
  }

  /** Runs a short housekeeping command; rejects on a non-zero exit. */
  private async exec(conn: SshConnection, command: string): Promise<string> {
    const ch = await conn.exec(command);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const off = conn.onLost(reject);
      ch.on('data', (d: Buffer) => (out += d.toString('utf8')));
      ch.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      ch.on('close', (code?: number | null, signal?: string) => {
        off();
        const exit = channelExit(code, signal);
        if (exit && 'exitCode' in exit && exit.exitCode === 0) return resolve(out);
        const how = !exit ? 'no exit status' : 'exitCode' in exit ? `exit ${exit.exitCode}` : `signal ${exit.signal}`;
        reject(new Error(`housekeeping command failed (${how}): ${(err || out).trim()}`));
      });
    });
  }
}
