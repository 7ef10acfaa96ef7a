// Running one job on one machine. Executors get connection info, never a provider.

import type { RenewableCredentials } from './aws-credentials.js';
import type { JobPayload } from './job.js';
import type { ConnectionInfo } from './machine.js';
import type { JobOutcome } from './outcome.js';
import type { TraceCheckpoint, TraceSink } from './trace.js';

export type ExecutorStyle = 'shell' | 'docker';

export interface JobRunContext {
  job: JobPayload;
  trace: TraceSink;
  /** Graceful cancel (GitLab `Job-Status: canceling`): user stages stop, after_script runs with
   *  CI_JOB_STATUS=canceled, on-failure stages run. */
  cancel: AbortSignal;
  /** Hard abort (`canceled`/`failed`/403, or shutdown cut-off): stop everything now, no after_script. */
  abort: AbortSignal;
  /** The executor could not clean up after the job (containers, credential files): the machine must not
   *  run another job, whatever the pool's maxUseCount says. */
  markUnclean?: (why: string) => void;
  /** The coordinator hands the job to its successor (onShutdown: handoff): the executor stops following the
   *  job's stages without stopping them, awaits `flushed` (the trace GitLab confirmed), records a trace
   *  checkpoint on the machine and returns at once; its outcome is then ignored. */
  handoff?: { signal: AbortSignal; flushed(): Promise<void> };
  /** When the job's deadline counts from (ms epoch); default: when the executor starts it. A run again after
   *  an interruption keeps the first attempt's start, so the job gets its timeout once, not twice. */
  startedAt?: number;
  /** Settles once GitLab has answered the job's acknowledgement (the `running` PUT). The executor starts
   *  at once, so the acknowledgement's round trip overlaps the machine's preparation; the user stages wait
   *  for it, so no user command runs for a job GitLab no longer wants (it is aborted or canceled by then).
   *  Absent for a job continued by a successor (acknowledged by the coordinator that started it). */
  confirmed?: Promise<unknown>;
  /** The job's AWS credentials in the `file` form (aws-credentials.ts): the executor writes them to the
   *  machine before the first stage and renews them while the job runs. */
  awsCredentials?: RenewableCredentials;
}

/** A job found on a machine by a successor coordinator (stateDir/jobs/<id>/ on the machine). */
export interface MachineJobRecord {
  job: JobPayload;
  /** When the job started (ms epoch), for its deadline. */
  startedAt: number;
  /** The trace checkpoint the previous coordinator recorded; stage 0 (from the start) when none. */
  checkpoint: TraceCheckpoint;
  /** The trace as it stood before the first stage (the runner's own lines), when it was recorded. */
  head?: Uint8Array;
  /** What the executor style recorded to continue the job (opaque outside it). */
  state?: unknown;
}

/** What a machine holds, as read back by a successor. */
export type MachineJobs = { kind: 'idle' } | { kind: 'job'; record: MachineJobRecord } | { kind: 'unreadable'; reason: string };

/** An executor whose jobs run detached from the connection, so a successor coordinator can pick them up. */
export interface Reattacher {
  /** Reads the machine's job records. Never throws: a machine that cannot be read is 'unreadable'. */
  inspect(machine: ConnectionInfo): Promise<MachineJobs>;
  /** Continues a job found on the machine from where its session was, following its running stage. */
  reattach(machine: ConnectionInfo, ctx: JobRunContext, record: MachineJobRecord): Promise<JobOutcome>;
  /** Removes the job's records from the machine once GitLab has its result (until then they are how a
   *  successor delivers it). Rejects when the machine cannot be reached. */
  forget(machine: ConnectionInfo, jobId: number): Promise<void>;
}

export interface Executor {
  readonly style: ExecutorStyle;
  /** Runs the whole job; never throws for job or machine failures: they become the outcome. */
  run(machine: ConnectionInfo, ctx: JobRunContext): Promise<JobOutcome>;
}

/**
 * Keeps an idle machine ready for its next job (the idle pool): an executor that implements this opens what
 * a job on the machine needs (its SSH connection) ahead of time, so picking the machine up costs no
 * connection setup. `onLost` is called once if the machine stops answering while it is held.
 */
export interface MachineWarmer {
  warm(machine: ConnectionInfo, onLost: (reason: Error) => void, signal?: AbortSignal): Promise<void>;
  /** Lets go of what `warm` opened (the machine leaves the pool). Idempotent. */
  cool(machine: ConnectionInfo): void;
}
