// The idle pool's policy: which settings are in force, how many machines to boot, which idle ones to
// remove. Pure — no I/O, time comes in as `now` (ms since the epoch) — so every rule is unit-tested
// without timers and the fleet only carries out the plan.

import { CronTime } from 'cron';
import type { PoolConfig, PoolSettings } from '../core/pool-config.js';

const CRON_FIELDS = 'minute hour day-of-month month day-of-week';

// Parsing costs more than matching and a schedule's few periods are matched on every reconcile.
const parsed = new Map<string, CronTime>();
const formatters = new Map<string, Intl.DateTimeFormat>();
// The cron package finds a match by stepping forward from a date, which for a sparse period (`* * 29 2 *`)
// takes thousands of steps (milliseconds). Whether a minute matches depends on its wall-clock fields only,
// so "no match from `from` until `next`" stays true and later calls in that span need no search.
const nextMatches = new Map<string, { from: number; next: number }>();

function cronOf(expr: string): CronTime {
  let ct = parsed.get(expr);
  if (!ct) {
    // Same rule as config/compile.ts: the cron package would also take a leading seconds field.
    const fields = expr.trim() === '' ? 0 : expr.trim().split(/\s+/).length;
    if (fields !== 5) throw new Error(`expected a cron expression of 5 fields (${CRON_FIELDS}), got ${fields} in ${JSON.stringify(expr)}`);
    // UTC: the expression is only ever matched against wall-clock fields (see periodMatches), never the host's zone.
    ct = new CronTime(expr, 'UTC');
    parsed.set(expr, ct);
  }
  return ct;
}

function formatterOf(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
    });
    formatters.set(timezone, f);
  }
  return f;
}

/** The wall-clock minute `now` falls in, in `timezone`, written as if it were UTC. */
function wallClockMinute(timezone: string, now: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatterOf(timezone).formatToParts(now)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!);
}

/**
 * True when the minute containing `now` matches the 5-field cron `expr` in `timezone`.
 *
 * DST: `now` is turned into the zone's wall clock first (Intl), and the cron fields are matched against that
 * wall clock in UTC, where no hour is skipped or repeated. So `* 2 * * *` in Europe/Berlin matches no minute
 * on the spring-forward day (02:xx does not exist there) and both 02:xx hours on the fall-back day — what a
 * window "while the clock on the wall says 2" means. Matching in the schedule's own zone would run into the
 * cron package's DST adjustments, which are made for firing jobs, not for asking "is this minute in?".
 *
 * Throws on an expression that is not a valid 5-field cron or an unknown zone (the config refuses both).
 * An expression that matches no date at all (`* * 30 2 *`) is simply never active.
 */
export function periodMatches(expr: string, timezone: string, now: number): boolean {
  const ct = cronOf(expr);
  const minute = wallClockMinute(timezone, now);
  const key = `${timezone}\n${expr}`;
  const known = nextMatches.get(key);
  if (known && known.from <= minute && minute <= known.next) return minute === known.next;
  // The first match strictly after one second before the minute is the minute itself iff it matches.
  let next: number;
  try {
    next = ct.getNextDateFrom(new Date(minute - 1000), 'UTC').toMillis();
  } catch {
    // The cron package gives up 8 years past the real clock: such a period (`* * 30 2 *`) is never active.
    next = Infinity;
  }
  nextMatches.set(key, { from: minute, next });
  return minute === next;
}

/** The settings in force at `now`: top-level, overridden by the last schedule with a matching period. `schedule` = index of that schedule, if any. */
export function activeSettings(pool: PoolConfig, now: number): PoolSettings & { schedule?: number } {
  const base: PoolSettings = {
    idleCount: pool.idleCount,
    idleTimeMs: pool.idleTimeMs,
    scaleFactor: pool.scaleFactor,
    ...(pool.scaleFactorLimit !== undefined && { scaleFactorLimit: pool.scaleFactorLimit }),
  };
  // Last wins, so search from the end and stop at the first active one.
  for (let i = pool.schedules.length - 1; i >= 0; i--) {
    const s = pool.schedules[i]!;
    if (!s.periods.some((p) => periodMatches(p, s.timezone, now))) continue;
    // Omitted keys fall back to the top level, not to an earlier active schedule: one schedule is read alone.
    return {
      idleCount: s.idleCount ?? base.idleCount,
      idleTimeMs: s.idleTimeMs ?? base.idleTimeMs,
      scaleFactor: s.scaleFactor ?? base.scaleFactor,
      ...((s.scaleFactorLimit ?? base.scaleFactorLimit) !== undefined && { scaleFactorLimit: s.scaleFactorLimit ?? base.scaleFactorLimit }),
      schedule: i,
    };
  }
  return base;
}

export interface PoolState {
  /** Machines booted, connected and waiting for a job. */
  idle: ReadonlyArray<{ id: string; idleSince: number }>;
  /** Machines running a job, or being created for a job that waits for one: they are not pool machines. */
  busy: number;
  /** Machines being created for the pool (they will join `idle`). */
  booting: number;
}

export interface PoolLimits {
  maxMachines: number;
  maxGrowthRate?: number;
}

export interface PoolPlan {
  /** The idle target now: what `idle + booting` should come to. */
  desiredIdle: number;
  /** Machines to start creating for the pool now. */
  create: number;
  /** Idle machines to remove now, the longest idle first. */
  remove: string[];
  /** When one more excess idle machine becomes removable (idle long enough): a timer for the caller. */
  nextRemovalAt?: number;
}

/**
 * What to do to bring the pool to its target at `now`.
 *
 * - desiredIdle = max(idleCount, min(ceil(scaleFactor × busy), scaleFactorLimit)), at most maxMachines − busy.
 * - create fills the gap to desiredIdle, but never takes busy + idle + booting past maxMachines (other
 *   autoscalers have let pools overshoot their max; here it cannot happen) and, with maxGrowthRate, never
 *   has more than that many pool machines booting at once.
 * - Excess idle machines (idle + booting − desiredIdle, booting ones count as soon-idle) are removed longest
 *   idle first, once idle for idleTimeMs — so a dip in load does not throw away machines that a job
 *   would want a minute later. Machines beyond maxMachines (only if the caller got there on its own) are
 *   removed at once, idle time or not: the cap is a promise, idleTime only a preference.
 */
export function planPool(state: PoolState, settings: PoolSettings, limits: PoolLimits, now: number): PoolPlan {
  const busy = Math.max(0, state.busy);
  const booting = Math.max(0, state.booting);
  const idleCount = state.idle.length;

  const scaled = Math.min(Math.ceil(settings.scaleFactor * busy), settings.scaleFactorLimit ?? Infinity);
  const desiredIdle = Math.max(0, Math.min(Math.max(settings.idleCount, scaled), limits.maxMachines - busy));

  // Implied by desiredIdle ≤ maxMachines − busy; spelled out because the cap is the one rule that must hold.
  const room = Math.max(0, limits.maxMachines - (busy + idleCount + booting));
  const growthRoom = limits.maxGrowthRate === undefined ? Infinity : Math.max(0, limits.maxGrowthRate - booting);
  const create = Math.max(0, Math.min(desiredIdle - (idleCount + booting), room, growthRoom));

  const excess = Math.min(idleCount, Math.max(0, idleCount + booting - desiredIdle));
  const overCap = Math.min(excess, Math.max(0, busy + idleCount + booting - limits.maxMachines));
  // Longest idle first; the id breaks ties so the same state always gives the same plan.
  const oldestFirst = [...state.idle].sort((a, b) => a.idleSince - b.idleSince || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const remove: string[] = [];
  let nextRemovalAt: number | undefined;
  for (let i = 0; i < excess; i++) {
    const m = oldestFirst[i]!;
    // Sorted by idleSince, so once one is not idle long enough, no later one is either.
    if (i >= overCap && now - m.idleSince < settings.idleTimeMs) {
      nextRemovalAt = m.idleSince + settings.idleTimeMs;
      break;
    }
    remove.push(m.id);
  }
  return { desiredIdle, create, remove, ...(nextRemovalAt !== undefined && { nextRemovalAt }) };
}
