// ExecutorFleet's public types: what callers (the job run, the coordinator, cli/) pass and get back.

import type { Clock } from '../core/clock.js';
import type { MachineWarmer } from '../core/executor.js';
import type { Logger } from '../core/logger.js';
import type { CapacityProvider, ConnectionInfo, Machine, OwnershipTags, TaskRequest } from '../core/machine.js';
import type { PoolConfig } from '../core/pool-config.js';
import type { RemovalReason } from './machine-phases.js';

export interface AcquiredMachine {
  machine: Machine;
  connection: ConnectionInfo;
}

export interface ExecutorFleetOptions {
  provider: CapacityProvider;
  tags: OwnershipTags;
  logger: Logger;
  clock: Clock;
  /** Machines in every phase together never exceed this. Default: no cap (the runner's slots bound jobs). */
  maxMachines?: number;
  /** The idle pool's policy. Default: nothing idle, one job per machine. */
  pool?: PoolConfig;
  /** Opens an idle machine's SSH connection ahead of its job (the executor). */
  warmer?: MachineWarmer;
  /** Attempts to get a ready machine before the job fails as a system failure (a permanent error: one). */
  acquireAttempts?: number;
  /** Pause before retrying a creation that failed with a retryable error (grows per attempt, at most 5×). */
  retryDelayMs?: number;
  /** A change (a job took a machine, a machine left) reconciles the pool after this pause, so a burst of
   *  changes is one reconcile and the refill does not compete with the job that just started. Default 250 ms. */
  settleMs?: number;
  /** A machine still booting, warming or returning this long after it entered that phase is removed
   *  (boot_timeout). The provider bounds its own boot; this is the fleet's backstop. Default: none. */
  bootTimeoutMs?: number;
  /** Called once for every machine the fleet decides to remove, with the reason (the metrics observer). */
  onMachineRemoved?: (executor: string, reason: RemovalReason) => void;
}

export interface FleetCounts {
  /** Being created, booting, or having its connection opened (warming, returning from a job). */
  booting: number;
  idle: number;
  busy: number;
  /** Being terminated, or a terminate that failed and waits for garbage collection: still counted
   *  against maxMachines until the provider confirmed it is gone. */
  removing: number;
}

export interface ReleaseOptions {
  /** The job ended in a way that leaves the machine healthy (not a system failure, not cut off). */
  reusable?: boolean;
  /** Why the machine must go (interrupted, unclean): it is removed with this reason whatever `reusable` says. */
  reason?: RemovalReason;
}

export interface AcquireOptions {
  /** A market the machine must come from: never an idle machine (it may be spot), always a new one. */
  market?: 'on-demand';
  /** The GitLab job id the machine is for: it is labelled busy with it (CapacityProvider.label), so a
   *  successor can tell the machine from an idle one. */
  job?: string;
  /** The job's own machine (a provider that builds one per job, e.g. a Fargate task from the job's image):
   *  never an idle machine, always a new one made from it. */
  task?: TaskRequest;
  /** Settles once GitLab has confirmed the job (its acknowledgement answered). Until then an idle machine
   *  is taken at once, but no machine is launched and none removed to make room: a job GitLab drops or
   *  cancels as it is handed out costs no launch. */
  confirmed?: Promise<unknown>;
}

export class MachineUnavailableError extends Error {
  constructor(
    message: string,
    /** permanent: not retried (the error does not go away); attempts_exhausted; shutdown. */
    readonly reason: 'permanent' | 'attempts_exhausted' | 'shutdown' = 'attempts_exhausted',
    /** The provider's error behind a permanent failure (an ImagePullError becomes image_pull_failure). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MachineUnavailableError';
  }
}

