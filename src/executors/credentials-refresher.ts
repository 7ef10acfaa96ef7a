// Keeps a job's AWS credentials file (aws-credentials-file.ts) fresh while the job runs: a loop on the
// executor's clock, owned by the job's run (started once the job's connection is open, stopped when the job
// ends or is handed off), writing through the job's own SSH connection and following it when the job
// reconnects. A renewal that fails is a WARNING in the trace and is tried again; only a session that
// expires without a successor stops the job (a system failure naming the last cause): a job that went on
// would fail later, at its next AWS call, with an error that does not say why.
//
// When (planRenewal): at half the session's life, so SDKs that re-run credential_process ahead of the
// Expiration they were given (botocore from 15 minutes before, the JavaScript SDK from 5, Java's from 15 s)
// read the new one; after a failure, again after 10 s, doubling up to 5 minutes, and at expiry once more.

import {
  errorMessage,
  sessionSecrets,
  type AwsSession,
  type Clock,
  type ConnectionInfo,
  type JobPayload,
  type JobRunContext,
  type Logger,
  type RenewableCredentials,
} from '../core/index.js';
import { hostExec } from './docker/machine-shell.js';
import { JobAbortReason } from './job-abort.js';
import { awsFilesOf, parseProcessOutput, readCommand, removeCommand, renewScript, setupScript, withAwsFileVariables, type AwsFiles } from './aws-credentials-file.js';
import { jobDirOf } from './job-records.js';
import type { SshConnection } from './ssh-connection.js';
import type { TraceWriter } from './trace-lines.js';

export const RETRY_FIRST_MS = 10_000;
export const RETRY_MAX_MS = 5 * 60_000;

export interface RenewalState {
  /** When the current session was received (or found on the machine). */
  receivedAt: number;
  expiresAt: number;
  /** Renewals failed since the last that worked. */
  failures: number;
  lastFailureAt?: number;
  /** Renew at this time instead of at half-life: a coordinator that took the job over knows neither when
   *  the session on the machine was issued nor whether it still has long to go. */
  renewAt?: number;
}

export type RenewalDecision = { kind: 'renew'; at: number; reason: 'half_life' | 'taken_over' | 'retry' | 'last_try' } | { kind: 'expired' };

/** When to renew next, with the reason (pure). A session is expired for good only once a renewal tried at
 *  or after its expiry failed: a process that slept past it (or took the job over late) tries first. */
export function planRenewal(s: RenewalState, now: number): RenewalDecision {
  if (s.failures === 0) {
    if (s.renewAt !== undefined) return { kind: 'renew', at: s.renewAt, reason: 'taken_over' };
    return { kind: 'renew', at: s.receivedAt + Math.floor((s.expiresAt - s.receivedAt) / 2), reason: 'half_life' };
  }
  if ((s.lastFailureAt ?? now) >= s.expiresAt) return { kind: 'expired' };
  const retryAt = (s.lastFailureAt ?? now) + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (s.failures - 1));
  return retryAt < s.expiresAt ? { kind: 'renew', at: retryAt, reason: 'retry' } : { kind: 'renew', at: s.expiresAt, reason: 'last_try' };
}

export interface CredentialsRefresherOptions {
  conn: SshConnection;
  files: AwsFiles;
  source: RenewableCredentials;
  trace: TraceWriter;
  clock: Clock;
  logger: Logger;
}

export class CredentialsRefresher {
  private readonly stopCtl = new AbortController();
  private readonly expiredCtl = new AbortController();
  private lastError = '';

  private constructor(
    private conn: SshConnection,
    private state: RenewalState,
    private readonly o: CredentialsRefresherOptions,
  ) {
    void this.loop();
  }

  /**
   * A new job: writes its first session and its profile before any stage runs (rejects when that fails: the
   * job must not start without them). A continued job (no session given): reads the session its machine
   * holds, masks it (the job may have printed it) and renews from there; resolves undefined when there is
   * none (the job's credentials are variables: nothing to renew).
   */
  static async start(o: CredentialsRefresherOptions): Promise<CredentialsRefresher | undefined> {
    const now = o.clock.now();
    const first = o.source.session;
    if (first) {
      const r = await hostExec(o.conn, setupScript(o.files, first));
      if (r.exitCode !== 0) throw new Error(`could not write the job's AWS credentials on the machine: ${(r.stderr || r.stdout).trim() || `exit code ${r.exitCode}`}`);
      return new CredentialsRefresher(o.conn, { receivedAt: now, expiresAt: first.expiresAt, failures: 0 }, o);
    }
    const found = parseProcessOutput(await o.conn.output(readCommand(o.files)));
    if (!found) return undefined;
    o.trace.addSecrets(sessionSecrets(found));
    return new CredentialsRefresher(o.conn, { receivedAt: now, expiresAt: found.expiresAt, failures: 0, renewAt: now }, o);
  }

  /** Aborted (reason: a JobAbortReason, system failure) when the session expired and could not be renewed. */
  get expired(): AbortSignal {
    return this.expiredCtl.signal;
  }

  /** The job reconnected: renewals go through the new connection. */
  follow(conn: SshConnection): void {
    this.conn = conn;
  }

  stop(): void {
    this.stopCtl.abort();
  }

  private async loop(): Promise<void> {
    const { clock, trace, logger } = this.o;
    for (;;) {
      const d = planRenewal(this.state, clock.now());
      if (d.kind === 'expired') {
        const why = `the job's AWS credentials expired at ${new Date(this.state.expiresAt).toISOString()} and could not be renewed: ${this.lastError}`;
        logger.warn({ err: this.lastError }, 'job credentials expired');
        this.expiredCtl.abort(new JobAbortReason('runner_system_failure', why));
        return;
      }
      try {
        await clock.sleep(Math.max(0, d.at - clock.now()), this.stopCtl.signal);
      } catch {
        return;
      }
      try {
        const s = await this.renew();
        if (this.stopCtl.signal.aborted) return;
        this.state = { receivedAt: clock.now(), expiresAt: s.expiresAt, failures: 0 };
        logger.debug({ expiresAt: new Date(s.expiresAt).toISOString() }, 'job credentials renewed');
      } catch (e) {
        if (this.stopCtl.signal.aborted) return;
        this.lastError = errorMessage(e);
        this.state = { receivedAt: this.state.receivedAt, expiresAt: this.state.expiresAt, failures: this.state.failures + 1, lastFailureAt: clock.now() };
        logger.warn({ err: this.lastError, failures: this.state.failures }, 'could not renew the job\'s AWS credentials');
        trace.warning(`could not renew the job's AWS credentials (valid until ${new Date(this.state.expiresAt).toISOString()}): ${this.lastError}; trying again`);
      }
    }
  }

  /** A new session from STS, masked before it reaches the machine, then written there. */
  private async renew(): Promise<AwsSession> {
    const s = await this.o.source.renew();
    this.o.trace.addSecrets(sessionSecrets(s));
    const conn = this.conn;
    if (conn.lost) throw new Error('the job\'s connection to its machine is down');
    const r = await hostExec(conn, renewScript(this.o.files, s), 60_000);
    if (r.exitCode !== 0) throw new Error(`could not write the renewed credentials on the machine: ${(r.stderr || r.stdout).trim() || `exit code ${r.exitCode}`}`);
    return s;
  }
}

/** The payload the executor runs: with the file form, told where its AWS config is (a new job only: a
 *  continued job's recorded payload has it already). */
export function jobWithCredentialFiles(ctx: JobRunContext, machine: ConnectionInfo): JobPayload {
  if (!ctx.awsCredentials?.session) return ctx.job;
  return withAwsFileVariables(ctx.job, awsFilesOf(jobDirOf(machine.stateDir, ctx.job.id)));
}

/** Starts the job's refresher when it has file-form credentials; its expiry aborts `expired` when given
 *  (the refresher's own `expired` signal says the same). */
export async function startJobCredentials(
  ctx: JobRunContext,
  conn: SshConnection,
  jobDir: string,
  trace: TraceWriter,
  clock: Clock,
  logger: Logger,
  expired?: AbortController,
): Promise<CredentialsRefresher | undefined> {
  if (!ctx.awsCredentials) return undefined;
  const r = await CredentialsRefresher.start({ conn, files: awsFilesOf(jobDir), source: ctx.awsCredentials, trace, clock, logger });
  if (expired) r?.expired.addEventListener('abort', () => expired.abort(r.expired.reason), { once: true });
  return r;
}

/** At the job's end (not at a handoff: the successor renews them): the credentials leave the machine. */
export async function removeJobCredentials(conn: SshConnection, jobDir: string, ctx: JobRunContext): Promise<void> {
  await conn.output(removeCommand(awsFilesOf(jobDir))).catch((e: unknown) => ctx.markUnclean?.(`could not remove the job's AWS credentials from ${jobDir}: ${errorMessage(e)}`));
}
