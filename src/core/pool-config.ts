// An executor's warm idle pool, as compiled from the config file (config/ builds it; fleet/pool-policy.ts
// reads it). Here in core/ so the policy depends on core only.

/** The knobs a schedule may override. */
export interface PoolSettings {
  /** Machines kept booted and waiting for a job (one job per machine at a time). */
  idleCount: number;
  /** An idle machine not needed for the idle target is removed once idle this long. */
  idleTimeMs: number;
  /** The idle target grows with load: ceil(scaleFactor × busy machines), capped by scaleFactorLimit. */
  scaleFactor: number;
  /** Cap of the load-based part of the idle target; absent = only maxMachines caps it. */
  scaleFactorLimit?: number;
}

/** Overrides in force while the current minute matches any of `periods` (5-field cron, in `timezone`). */
export interface PoolSchedule {
  periods: readonly string[];
  /** IANA zone the periods are read in, so "8-18 on weekdays" follows local time across DST. */
  timezone: string;
  idleCount?: number;
  idleTimeMs?: number;
  scaleFactor?: number;
  scaleFactorLimit?: number;
}

export interface PoolConfig extends PoolSettings {
  /** Jobs a machine runs before it is removed; 1 = a fresh machine for every job. */
  maxUseCount: number;
  /** Pool machines being created at the same time; absent = only maxMachines limits it. */
  maxGrowthRate?: number;
  /** The last schedule with a matching period wins; keys it omits keep the values above. */
  schedules: readonly PoolSchedule[];
}

/**
 * No pool: nothing kept idle and a fresh machine per job — the behaviour before pools existed, and the
 * safe one for privileged Docker-in-Docker (a job cannot leave anything behind for the next one).
 * Frozen because every executor without a `pool` key shares it.
 */
export const DEFAULT_POOL: PoolConfig = Object.freeze({
  idleCount: 0,
  idleTimeMs: 10 * 60_000,
  scaleFactor: 0,
  maxUseCount: 1,
  schedules: Object.freeze([]) as readonly PoolSchedule[],
});
