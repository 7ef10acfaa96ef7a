// Keeps the fleet's lease (README "One coordinator per fleet"): waits for it, renews it well inside its
// duration, and gives it up, or declares it lost, before anyone else may take it.
//
// Timing. A claim or renewal computed at instant t0 writes expiresAt = wall(t0) + duration. A contender
// takes the record only once its own wall clock is past that. The holder counts itself active only until
// t0 + duration - maxClockSkew on its own monotonic clock, so a contender whose clock runs up to
// maxClockSkew ahead still starts after the holder stopped asking for jobs. A renewal that fails (network,
// throttling) is retried until that deadline; one that finds another holder or version loses at once.
// The store makes every write compare-and-set on (holder, version), so a process that was paused past its
// deadline and wakes up cannot extend, or release, a successor's lease.

import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import { LeaseLostError, type HeldLease, type Lease, type LeaseRecord, type LeaseStore } from '../core/lease.js';
import type { Logger } from '../core/logger.js';

export interface LeaseTiming {
  /** How long a claim or renewal holds the record. */
  durationMs: number;
  /** How often the holder renews; at most a third of durationMs, so two renewals can fail before it stands down. */
  renewIntervalMs: number;
  /** How far another holder's clock may run ahead of ours; the holder stops this much before its record expires. */
  maxClockSkewMs: number;
}

export interface LeaseKeeperOptions extends LeaseTiming {
  store: LeaseStore;
  /** This process: `id` is the fencing identity (random per process), `owner` names it for people. */
  holder: { id: string; owner: string };
  clock: Clock;
  /**
   * Milliseconds on a clock that never jumps (performance.now()), for this process's own deadline; wall
   * clock steps then cannot stretch it. Default clock.now (tests step both together).
   */
  monotonicNow?: () => number;
  logger: Logger;
}

/** Pause between two tries to reach a store that did not answer, while waiting for the lease. */
const ACQUIRE_RETRY = { minMs: 1_000, maxMs: 30_000 };
/** Pause before renewing again after a renewal failed (never longer than the renew interval). */
const RENEW_RETRY_MS = 2_000;
/** Shortest pause between two claims while someone else holds the lease. */
const MIN_POLL_MS = 100;
/** Longest a release may take at shutdown before it is left to expire. */
const RELEASE_TIMEOUT_MS = 5_000;

const iso = (ms: number) => new Date(ms).toISOString();

export class LeaseKeeper implements Lease {
  private readonly mono: () => number;

  constructor(private readonly o: LeaseKeeperOptions) {
    this.mono = o.monotonicNow ?? (() => o.clock.now());
  }

  async acquire(signal: AbortSignal): Promise<HeldLease | undefined> {
    const { store, holder, clock, logger, durationMs, maxClockSkewMs } = this.o;
    let failures = 0;
    let lastSeen = '';
    while (!signal.aborted) {
      const startedAt = this.mono();
      const now = clock.now();
      let claim;
      try {
        claim = await bounded(clock, this.o.renewIntervalMs, signal, (s) => store.acquire({ holder: holder.id, owner: holder.owner, now, expiresAt: now + durationMs }, s));
      } catch (e) {
        if (signal.aborted) break;
        const waitMs = Math.min(ACQUIRE_RETRY.minMs * 2 ** failures++, ACQUIRE_RETRY.maxMs);
        logger.warn({ lease: store.where, attempt: failures, retryInS: waitMs / 1000, err: errorMessage(e) }, 'could not reach the lease store; trying again');
        await quietSleep(clock, waitMs, signal);
        continue;
      }
      failures = 0;
      if (claim.kind === 'held') {
        const validUntil = startedAt + durationMs - maxClockSkewMs;
        if (this.mono() >= validUntil) {
          // The claim took longer than the lease lasts (a paused process): it may already be someone else's.
          logger.warn({ lease: store.where, version: claim.version }, 'the lease was claimed too late to be used; claiming again');
          continue;
        }
        logger.info({ lease: store.where, version: claim.version, owner: holder.owner, expiresAt: iso(claim.expiresAt) }, 'lease acquired: this coordinator is the active one');
        return new KeptLease(this.o, this.mono, claim.version, validUntil);
      }
      const c = claim.current;
      const seen = c ? `${c.holder}/${c.version}` : '';
      if (c && seen !== lastSeen) {
        logger.info({ lease: store.where, holder: c.owner, version: c.version, until: iso(c.expiresAt) }, `waiting for the lease held by ${c.owner} until ${iso(c.expiresAt)}`);
      }
      lastSeen = seen;
      // Claim again just after the record expires by our clock, and at least every renew interval, so a
      // released lease is taken quickly.
      const untilExpiry = c ? c.expiresAt - clock.now() + 1 : 0;
      await quietSleep(clock, Math.min(Math.max(untilExpiry, MIN_POLL_MS), this.o.renewIntervalMs), signal);
    }
    return undefined;
  }
}

class KeptLease implements HeldLease {
  private readonly lostCtl = new AbortController();
  /** Ends the renew and deadline loops (loss or release). */
  private readonly stopCtl = new AbortController();
  private lastError: string | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private releasing: Promise<void> | undefined;

  constructor(
    private readonly o: LeaseKeeperOptions,
    private readonly mono: () => number,
    readonly version: number,
    private validUntil: number,
  ) {
    this.renewing = this.renewLoop();
    void this.deadlineLoop();
  }

  get lost(): AbortSignal {
    return this.lostCtl.signal;
  }

  held(): boolean {
    return !this.stopCtl.signal.aborted && this.mono() < this.validUntil;
  }

  release(): Promise<void> {
    this.releasing ??= (async () => {
      const wasLost = this.lostCtl.signal.aborted;
      this.stopCtl.abort();
      await this.renewing;
      if (wasLost) return; // the record is someone else's, or was let go when it was lost
      await this.freeRecord();
      this.o.logger.info({ lease: this.o.store.where, version: this.version }, 'lease released');
    })();
    return this.releasing;
  }

  /** `free`: not renewed in time, so a renewal may still have reached the store after all; it would keep
   *  successors waiting for a whole duration, so the record is freed if it is still ours (compare-and-set:
   *  a successor's record is left alone). */
  private lose(message: string, o: { by?: LeaseRecord; free: boolean }): void {
    if (this.stopCtl.signal.aborted) return;
    this.stopCtl.abort();
    const by = o.by;
    this.o.logger.error({ lease: this.o.store.where, version: this.version, ...(by && { holder: by.owner, holderVersion: by.version }) }, `lease lost: ${message}`);
    this.lostCtl.abort(new LeaseLostError(message, by));
    if (o.free) void this.freeRecord();
  }

  /** Conditional release, bounded in time: a store that does not answer leaves the record to expire. */
  private async freeRecord(): Promise<void> {
    try {
      await bounded(this.o.clock, RELEASE_TIMEOUT_MS, undefined, (s) => this.o.store.release({ holder: this.o.holder.id, version: this.version }, s));
    } catch (e) {
      this.o.logger.warn({ lease: this.o.store.where, err: errorMessage(e) }, 'could not release the lease; it expires on its own');
    }
  }

  private async renewLoop(): Promise<void> {
    const { store, holder, clock, logger, durationMs, renewIntervalMs, maxClockSkewMs } = this.o;
    const stop = this.stopCtl.signal;
    let delay = renewIntervalMs;
    while (!stop.aborted) {
      await quietSleep(clock, delay, stop);
      if (stop.aborted) return;
      if (!this.held()) return this.expired();
      const startedAt = this.mono();
      const now = clock.now();
      let claim;
      try {
        claim = await bounded(clock, renewIntervalMs, stop, (s) => store.renew({ holder: holder.id, owner: holder.owner, version: this.version, now, expiresAt: now + durationMs }, s));
      } catch (e) {
        if (stop.aborted) return;
        this.lastError = errorMessage(e);
        const leftMs = Math.max(0, this.validUntil - this.mono());
        logger.warn({ lease: store.where, err: this.lastError, standDownInS: Math.round(leftMs / 1000) }, 'could not renew the lease; trying again');
        delay = Math.min(renewIntervalMs, RENEW_RETRY_MS);
        continue;
      }
      if (stop.aborted) return;
      if (claim.kind === 'busy') {
        const c = claim.current;
        return this.lose(c ? `${c.owner} took it over (version ${c.version})` : 'its record is gone', { ...(c && { by: c }), free: false });
      }
      this.lastError = undefined;
      this.validUntil = Math.max(this.validUntil, startedAt + durationMs - maxClockSkewMs);
      delay = renewIntervalMs;
    }
  }

  /** Fires at the deadline even while a renewal hangs: the coordinator stops asking for jobs on time. */
  private async deadlineLoop(): Promise<void> {
    const stop = this.stopCtl.signal;
    while (!stop.aborted) {
      const leftMs = this.validUntil - this.mono();
      if (leftMs <= 0) return this.expired();
      await quietSleep(this.o.clock, leftMs, stop);
    }
  }

  private expired(): void {
    const s = (this.o.durationMs - this.o.maxClockSkewMs) / 1000;
    this.lose(`not renewed within ${s}s${this.lastError ? ` (last error: ${this.lastError})` : ''}`, { free: true });
  }
}

/** One store call, abandoned (its signal aborted, the promise rejected) after `ms` or when `parent` aborts. */
async function bounded<T>(clock: Clock, ms: number, parent: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  const timer = new AbortController();
  const onParent = () => ctl.abort(parent!.reason);
  if (parent?.aborted) onParent();
  parent?.addEventListener('abort', onParent, { once: true });
  const timeout = clock.sleep(ms, timer.signal).then(
    () => {
      const e = new Error(`the lease store did not answer within ${ms / 1000}s`);
      ctl.abort(e);
      throw e;
    },
    () => new Promise<never>(() => undefined),
  );
  try {
    return await Promise.race([call(ctl.signal), timeout]);
  } finally {
    timer.abort();
    parent?.removeEventListener('abort', onParent);
  }
}

async function quietSleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  await clock.sleep(ms, signal).catch(() => undefined);
}

/** No lease configured: held from the start and never lost (the coordinator runs as it always has). */
export const unleased: Lease = {
  acquire: async () => ({
    version: 0,
    lost: new AbortController().signal,
    held: () => true,
    release: async () => undefined,
  }),
};
