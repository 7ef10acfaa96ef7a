// Options every SSH-based execution style shares: how the machine is reached and how stages are stopped.
import type { Clock, Logger } from '../core/index.js';

export interface SshExecutionOptions {
  logger: Logger;
  clock?: Clock;
  /** Budget for reaching the machine over SSH, retries included. */
  connectTimeoutMs: number;
  /** Default 5 s. */
  keepaliveIntervalMs?: number;
  /** Default 3. */
  keepaliveCountMax?: number;
  /** Between SIGTERM and SIGKILL when a stage is stopped. Default 5 s. */
  killGraceMs?: number;
  /** Bound for the cleanup stage (the docker style also removes the job's containers within it). Default 60 s. */
  cleanupTimeoutMs?: number;
  /** Bound for on-failure stages after the job deadline passed. Default 5 min. */
  lateStagesTimeoutMs?: number;
}
