// Typed errors, classified once at the boundary (providers, executors, gitlab client).

import { describeInterruption, type MachineInterruption } from './outcome.js';

export class FleetError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config file that does not validate; `path` is the dotted key path. */
export class ConfigError extends FleetError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(path ? `${path}: ${message}` : message);
  }
}

/** The cloud could not supply capacity in that pool (subnet/AZ × instance type, or spot). Try another. */
export class InsufficientCapacityError extends FleetError {}
/** The thing to act on no longer exists. Deleting it again is success. */
export class NotFoundError extends FleetError {}
/** Worth retrying after a backoff (throttling, 5xx, timeouts). */
export class RetryableError extends FleetError {}
/** Will not get better by retrying (bad parameters, permissions). */
export class PermanentError extends FleetError {}
/** The job's image could not be pulled (a Fargate task stopped with CannotPullContainerError): the job fails
 *  as image_pull_failure, at once, as gitlab-runner reports it. */
export class ImagePullError extends PermanentError {}
/** The machine went away or stopped answering while a job ran on it. */
export class MachineLostError extends FleetError {}

/** The machine is being taken back by its cloud (a spot interruption notice): the job on it is stopped.
 *  Used as the abort reason of the job's stages; `interruption` is the notice as the machine reported it. */
export class MachineInterruptedError extends FleetError {
  constructor(readonly interruption: MachineInterruption) {
    super(describeInterruption(interruption));
  }
}

export const isInsufficientCapacity = (e: unknown): e is InsufficientCapacityError => e instanceof InsufficientCapacityError;
export const isNotFound = (e: unknown): e is NotFoundError => e instanceof NotFoundError;
export const isRetryable = (e: unknown): e is RetryableError => e instanceof RetryableError;
export const isMachineLost = (e: unknown): e is MachineLostError => e instanceof MachineLostError;

/** Message of any thrown value, for logs and traces. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
