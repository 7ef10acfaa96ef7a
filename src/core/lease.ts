// The fleet's lease: at most one coordinator per fleet takes jobs. A `LeaseStore` is one shared record (a
// DynamoDB item, a lock directory) that can be claimed, renewed and released with compare-and-set writes;
// `Lease` is what the composition root waits on (runner/lease-keeper.ts turns a store into one). Types only.

/** The shared record as a store last saw it. */
export interface LeaseRecord {
  /** The holder's fencing identity: random per process, so a restarted coordinator is a new holder. */
  holder: string;
  /** Who that is, for people: an ECS task ARN or host name, and a pid. */
  owner: string;
  /** Milliseconds since the epoch, by the writer's clock, until which the holder may act. */
  expiresAt: number;
  /** Fencing token: raised by every acquisition, never by a renewal; renewals are conditional on it. */
  version: number;
}

/** A claim or renewal that went through, or the record that stood in its way. */
export type LeaseClaim =
  | { kind: 'held'; version: number; expiresAt: number }
  /** Someone else holds it (current), or the record is gone (no current: a renewal found nothing to renew). */
  | { kind: 'busy'; current?: LeaseRecord };

export interface LeaseWrite {
  holder: string;
  owner: string;
  /** The writer's wall clock when it computed `expiresAt`: a record with expiresAt below it is free. */
  now: number;
  /** now + the lease duration. */
  expiresAt: number;
}

/**
 * One shared record, written only by compare-and-set. A store throws for anything it could not decide
 * (network, throttling, permissions): the caller retries until its own deadline.
 */
export interface LeaseStore {
  /** Where the record lives, for logs ("DynamoDB table t, key fleet"). */
  readonly where: string;
  /** Claims the record if it is missing, released, expired by `now`, or already this holder's; raises the version. */
  acquire(w: LeaseWrite, signal?: AbortSignal): Promise<LeaseClaim>;
  /** Moves expiresAt on, only while the record still has this holder and version (fencing). */
  renew(w: LeaseWrite & { version: number }, signal?: AbortSignal): Promise<LeaseClaim>;
  /** Marks the record free, only while it still has this holder and version; a lost record is not an error. */
  release(w: { holder: string; version: number }, signal?: AbortSignal): Promise<void>;
}

/** Why a held lease ended without release(): taken over by someone else, or not renewed in time. */
export class LeaseLostError extends Error {
  constructor(
    message: string,
    readonly by?: LeaseRecord,
  ) {
    super(message);
    this.name = 'LeaseLostError';
  }
}

/** The lease while this process holds it. */
export interface HeldLease {
  /** The fencing token of this acquisition. */
  readonly version: number;
  /** Aborts (reason: LeaseLostError) the moment the lease is lost or can no longer be assumed held. */
  readonly lost: AbortSignal;
  /** True while this process may act as the fleet's coordinator: checked right before each job request. */
  held(): boolean;
  /** Stops renewing and frees the record for a successor (clean stop). Idempotent, never throws. */
  release(): Promise<void>;
}

export interface Lease {
  /** Waits until the lease is this process's (free, released or expired), or `signal` aborts (undefined). */
  acquire(signal: AbortSignal): Promise<HeldLease | undefined>;
}
