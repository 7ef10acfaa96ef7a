// What the runner loop needs from GitLab, as small ports. cli/ adapts the gitlab/ client to these, so the
// loop's rules (reserve before asking, drain on stop) are testable without HTTP.

import type { JobPayload } from '../core/job.js';
import type { JobOutcome } from '../core/outcome.js';
import type { TraceLog } from '../core/trace.js';

export type JobRequestOutcome =
  /** `unreadable`: GitLab's payload could not be read (problems with field paths); the job is failed. */
  | { kind: 'job'; job: JobPayload; unreadable?: string[] }
  /** No job. `longPolled`: GitLab already held the request, so poll again at once. */
  | { kind: 'none'; longPolled: boolean }
  /** The runner token is not usable for a while (e.g. three 403s in a row). */
  | { kind: 'paused'; retryInMs: number; reason: string }
  | { kind: 'error'; message: string };

export interface JobFeed {
  requestJob(signal: AbortSignal): Promise<JobRequestOutcome>;
}

export interface JobChannelCallbacks {
  /** GitLab asked for a graceful cancel (`Job-Status: canceling`). */
  onCancel(): void;
  /** GitLab refused further updates (403, canceled/failed): stop the job now. */
  onAbort(reason: string): void;
}

/** One job's conversation with GitLab after it was handed out. */
export interface JobChannel {
  /** The `running` acknowledgement. 'drop': GitLab no longer wants this job; 'canceled': GitLab is canceling
   *  it (Job-Status: canceling), so it is failed as canceled without running. */
  acknowledge(): Promise<'ok' | 'drop' | 'canceled'>;
  /** Starts periodic trace PATCHes and keep-alives. */
  start(callbacks: JobChannelCallbacks): void;
  /** Sends every remaining trace byte, then the final state, retrying while GitLab is unavailable.
   *  'delivered': GitLab took it (or ended the job itself); 'pending': abandon() was called first, so it
   *  is still to deliver (the journal keeps it for the next start). Never throws. */
  finish(outcome: JobOutcome): Promise<'delivered' | 'pending'>;
  /** Stops a delivery in progress (shutdown cut-off); finish() then resolves 'pending'. */
  abandon(): void;
  /** Trace bytes GitLab has confirmed storing. */
  storedBytes?(): number;
  /** Handoff to a successor: PATCHes what the log holds (no final state), then stops all traffic.
   *  Resolves with the bytes GitLab confirmed; bounded by `signal`. */
  handOff?(signal: AbortSignal): Promise<number>;
}

export interface OpenJobChannelOptions {
  /** The job is continued from a trace checkpoint (a successor coordinator): GitLab holds at least this
   *  many bytes, the log starts there. */
  resumeFrom?: number;
}

export type OpenJobChannel = (job: JobPayload, log: TraceLog, options?: OpenJobChannelOptions) => JobChannel;

/** Periodic upkeep (garbage collection, token rotation), run by the loop on its own schedule. */
export interface MaintenanceTask {
  name: string;
  everyMs: number;
  run(): Promise<void>;
}
