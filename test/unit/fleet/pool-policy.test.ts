import { describe, expect, it } from 'vitest';
import { DEFAULT_POOL, type PoolConfig, type PoolSettings } from '../../../src/core/index.js';
import { activeSettings, periodMatches, planPool, type PoolState } from '../../../src/fleet/pool-policy.js';

const at = (iso: string) => Date.parse(iso);
const MIN = 60_000;

/** The offsets (in minutes from `fromIso`) of the matching minutes among the next `minutes`. */
/** Minute offsets in [0, minutes) that match, sampled every STEP minutes: DST switches and the windows
 *  tested here fall on whole hours, so the sample sees every edge at a fifth of the cost. */
const STEP = 5;
function matchingMinutes(expr: string, tz: string, fromIso: string, minutes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < minutes; i += STEP) if (periodMatches(expr, tz, at(fromIso) + i * MIN)) out.push(i);
  return out;
}

describe('periodMatches', () => {
  const workHours = '* 8-18 * * mon-fri';

  it('matches every minute 08:00–18:59 on weekdays (UTC), and the whole minute containing now', () => {
    // 2025-03-10 is a Monday.
    expect(periodMatches(workHours, 'UTC', at('2025-03-10T08:00:00Z'))).toBe(true);
    expect(periodMatches(workHours, 'UTC', at('2025-03-10T18:59:59.999Z'))).toBe(true);
    expect(periodMatches(workHours, 'UTC', at('2025-03-10T07:59:59.999Z'))).toBe(false);
    expect(periodMatches(workHours, 'UTC', at('2025-03-10T19:00:00Z'))).toBe(false);
    expect(periodMatches(workHours, 'UTC', at('2025-03-14T12:00:00Z'))).toBe(true); // Friday
    expect(periodMatches(workHours, 'UTC', at('2025-03-15T12:00:00Z'))).toBe(false); // Saturday
    expect(periodMatches(workHours, 'UTC', at('2025-03-16T12:00:00Z'))).toBe(false); // Sunday
    // 11 hours × 60 minutes on a weekday, none on Saturday.
    expect(matchingMinutes(workHours, 'UTC', '2025-03-10T00:00:00Z', 1440)).toHaveLength(660 / STEP);
    expect(matchingMinutes(workHours, 'UTC', '2025-03-15T00:00:00Z', 1440)).toHaveLength(0);
  });

  it('reads the hours in the schedule\'s zone, winter and summer (Europe/Berlin: UTC+1 / UTC+2)', () => {
    const p = '* 8-18 * * *';
    expect(periodMatches(p, 'Europe/Berlin', at('2025-01-15T07:30:00Z'))).toBe(true); // 08:30 CET
    expect(periodMatches(p, 'Europe/Berlin', at('2025-01-15T06:59:00Z'))).toBe(false); // 07:59 CET
    expect(periodMatches(p, 'Europe/Berlin', at('2025-01-15T17:59:00Z'))).toBe(true); // 18:59 CET
    expect(periodMatches(p, 'Europe/Berlin', at('2025-01-15T18:00:00Z'))).toBe(false); // 19:00 CET
    expect(periodMatches(p, 'Europe/Berlin', at('2025-07-15T06:00:00Z'))).toBe(true); // 08:00 CEST
    expect(periodMatches(p, 'Europe/Berlin', at('2025-07-15T05:59:00Z'))).toBe(false); // 07:59 CEST
    expect(periodMatches(p, 'Europe/Berlin', at('2025-07-15T17:00:00Z'))).toBe(false); // 19:00 CEST
    expect(periodMatches(p, 'UTC', at('2025-07-15T17:00:00Z'))).toBe(true);
  });

  it('Europe/Berlin spring forward (2025-03-30, 02:00 → 03:00): hour 2 does not exist that day', () => {
    // The local day 2025-03-30 runs from 2025-03-29T23:00Z to 2025-03-30T22:00Z: 23 hours.
    expect(matchingMinutes('* 2 * * *', 'Europe/Berlin', '2025-03-29T23:00:00Z', 23 * 60)).toEqual([]);
    expect(matchingMinutes('* 3 * * *', 'Europe/Berlin', '2025-03-29T23:00:00Z', 23 * 60)).toHaveLength(60 / STEP);
    expect(matchingMinutes('* * * * *', 'Europe/Berlin', '2025-03-29T23:00:00Z', 23 * 60)).toHaveLength((23 * 60) / STEP);
    // 01:59 CET is followed by 03:00 CEST.
    expect(periodMatches('59 1 * * *', 'Europe/Berlin', at('2025-03-30T00:59:00Z'))).toBe(true);
    expect(periodMatches('0 3 * * *', 'Europe/Berlin', at('2025-03-30T01:00:00Z'))).toBe(true);
    // A window across the gap stays active through it: 08-18 is a full 11 hours either side of the switch.
    expect(matchingMinutes('* 8-18 * * sun', 'Europe/Berlin', '2025-03-29T23:00:00Z', 23 * 60)).toHaveLength(660 / STEP);
  });

  it('Europe/Berlin fall back (2025-10-26, 03:00 → 02:00): hour 2 happens twice and matches both times', () => {
    // The local day runs from 2025-10-25T22:00Z to 2025-10-26T23:00Z: 25 hours.
    const minutes = matchingMinutes('* 2 * * *', 'Europe/Berlin', '2025-10-25T22:00:00Z', 25 * 60);
    expect(minutes).toHaveLength(120 / STEP);
    expect(periodMatches('30 2 * * *', 'Europe/Berlin', at('2025-10-26T00:30:00Z'))).toBe(true); // 02:30 CEST
    expect(periodMatches('30 2 * * *', 'Europe/Berlin', at('2025-10-26T01:30:00Z'))).toBe(true); // 02:30 CET
    expect(periodMatches('30 2 * * *', 'Europe/Berlin', at('2025-10-26T01:31:00Z'))).toBe(false);
    expect(matchingMinutes('* * * * *', 'Europe/Berlin', '2025-10-25T22:00:00Z', 25 * 60)).toHaveLength((25 * 60) / STEP);
  });

  it('America/New_York: EST/EDT and its own switch date (2025-03-09, a week before Europe)', () => {
    const nine = '0 9 * * *';
    expect(periodMatches(nine, 'America/New_York', at('2025-01-15T14:00:00Z'))).toBe(true); // 09:00 EST
    expect(periodMatches(nine, 'America/New_York', at('2025-01-15T13:00:00Z'))).toBe(false);
    expect(periodMatches(nine, 'America/New_York', at('2025-07-15T13:00:00Z'))).toBe(true); // 09:00 EDT
    expect(periodMatches(nine, 'America/New_York', at('2025-07-15T14:00:00Z'))).toBe(false);
    // Saturday 2025-03-08 is still EST, Monday 2025-03-10 already EDT.
    expect(periodMatches(nine, 'America/New_York', at('2025-03-08T14:00:00Z'))).toBe(true);
    expect(periodMatches(nine, 'America/New_York', at('2025-03-10T13:00:00Z'))).toBe(true);
    // The local day 2025-03-09 (05:00Z to 04:00Z next day) has 23 hours and no 02:xx.
    expect(matchingMinutes('* 2 * * *', 'America/New_York', '2025-03-09T05:00:00Z', 23 * 60)).toEqual([]);
  });

  it('reads the weekday in the zone: Sunday 23:30 UTC is Monday 08:30 in Tokyo', () => {
    const now = at('2025-03-09T23:30:00Z');
    expect(periodMatches('* 8 * * mon', 'Asia/Tokyo', now)).toBe(true);
    expect(periodMatches('* 8 * * mon', 'UTC', now)).toBe(false);
    expect(periodMatches('* 23 * * sun', 'UTC', now)).toBe(true);
    // Friday 20:00 in New York is already Saturday in UTC.
    expect(periodMatches('* * * * fri', 'America/New_York', at('2025-03-15T00:30:00Z'))).toBe(true);
    expect(periodMatches('* * * * fri', 'UTC', at('2025-03-15T00:30:00Z'))).toBe(false);
  });

  it('takes day-of-week names, numbers, 7 for Sunday, lists and month names', () => {
    const sunday = at('2025-03-16T12:00:00Z');
    const monday = at('2025-03-17T12:00:00Z');
    for (const dow of ['sun', 'SUN', '0', '7', '0,6', 'sat,sun', '5-7']) {
      expect(periodMatches(`* * * * ${dow}`, 'UTC', sunday), dow).toBe(true);
      expect(periodMatches(`* * * * ${dow}`, 'UTC', monday), dow).toBe(false);
    }
    expect(periodMatches('* * * * mon,wed', 'UTC', monday)).toBe(true);
    expect(periodMatches('* * * * tue,wed', 'UTC', monday)).toBe(false);
    expect(periodMatches('* * * mar *', 'UTC', monday)).toBe(true);
    expect(periodMatches('* * * dec *', 'UTC', monday)).toBe(false);
    expect(periodMatches('* * * 12 *', 'UTC', at('2025-12-01T00:00:00Z'))).toBe(true);
  });

  it('takes steps and lists of minutes', () => {
    expect(periodMatches('*/15 * * * *', 'UTC', at('2025-03-10T10:30:00Z'))).toBe(true);
    expect(periodMatches('*/15 * * * *', 'UTC', at('2025-03-10T10:31:00Z'))).toBe(false);
    expect(periodMatches('0,59 * * * *', 'UTC', at('2025-03-10T10:59:30Z'))).toBe(true);
    expect(periodMatches('0-58 0-22 * * *', 'UTC', at('2025-03-10T23:59:00Z'))).toBe(false);
  });

  it('uses cron day-of-month OR day-of-week when both are restricted', () => {
    const p = '* * 1 * mon';
    expect(periodMatches(p, 'UTC', at('2025-03-10T12:00:00Z'))).toBe(true); // Monday the 10th
    expect(periodMatches(p, 'UTC', at('2025-04-01T12:00:00Z'))).toBe(true); // Tuesday the 1st
    expect(periodMatches(p, 'UTC', at('2025-04-02T12:00:00Z'))).toBe(false); // Wednesday the 2nd
  });

  it('never matches a date that does not exist, and matches Feb 29 in a leap year only', () => {
    expect(periodMatches('* * 30 2 *', 'UTC', at('2025-03-01T00:00:00Z'))).toBe(false);
    expect(periodMatches('* * 29 2 *', 'UTC', at('2028-02-29T10:00:00Z'))).toBe(true);
    expect(periodMatches('* * 29 2 *', 'UTC', at('2025-03-01T10:00:00Z'))).toBe(false);
  });

  it('gives the same answers in any call order (the next-match cache is exact)', () => {
    const p = '0 12 * * *';
    const seq = ['11:58', '11:59', '12:00', '12:01', '11:59', '12:00', '11:00', '12:00'].map((t) => periodMatches(p, 'UTC', at(`2025-06-02T${t}:00Z`)));
    expect(seq).toEqual([false, false, true, false, false, true, false, true]);
    // Next day, after the cached next match has passed.
    expect(periodMatches(p, 'UTC', at('2025-06-03T12:00:00Z'))).toBe(true);
    expect(periodMatches(p, 'UTC', at('2025-06-03T12:00:00Z') - 1)).toBe(false);
  });

  it('throws on what the config refuses: other than 5 fields, bad fields, unknown zones', () => {
    expect(() => periodMatches('0 * 8-18 * * mon-fri', 'UTC', 0)).toThrow(/5 fields \(minute hour day-of-month month day-of-week\), got 6/);
    expect(() => periodMatches('@daily', 'UTC', 0)).toThrow(/got 1/);
    expect(() => periodMatches('* 25 * * *', 'UTC', 0)).toThrow(/out of range/);
    expect(() => periodMatches('* * * * *', 'Mars/Olympus', 0)).toThrow(RangeError);
  });
});

describe('activeSettings', () => {
  const pool: PoolConfig = {
    idleCount: 1,
    idleTimeMs: 10 * MIN,
    scaleFactor: 0,
    maxUseCount: 1,
    scaleFactorLimit: 3,
    schedules: [
      // Weekdays 08–18 Berlin: a bigger pool, faster to shrink.
      { periods: ['* 8-18 * * mon-fri'], timezone: 'Europe/Berlin', idleCount: 5, idleTimeMs: 2 * MIN },
      // Friday afternoon (UTC): overrides the one above only for the keys it sets.
      { periods: ['* 13-15 * * fri', '* 0 1 1 *'], timezone: 'UTC', scaleFactor: 1.5 },
      // Nights: no scaling cap.
      { periods: ['* 22-23 * * *'], timezone: 'UTC', idleCount: 0, scaleFactorLimit: 10 },
    ],
  };

  it('is the top level when no schedule is active, with no schedule index', () => {
    const s = activeSettings(pool, at('2025-03-15T12:00:00Z')); // Saturday noon
    expect(s).toEqual({ idleCount: 1, idleTimeMs: 10 * MIN, scaleFactor: 0, scaleFactorLimit: 3 });
    expect(s).not.toHaveProperty('schedule');
  });

  it('applies an active schedule\'s keys and keeps the top-level value of the others', () => {
    expect(activeSettings(pool, at('2025-03-10T07:30:00Z'))).toEqual({ idleCount: 5, idleTimeMs: 2 * MIN, scaleFactor: 0, scaleFactorLimit: 3, schedule: 0 });
    // 06:30Z is 07:30 in Berlin: not yet.
    expect(activeSettings(pool, at('2025-03-10T06:30:00Z'))).not.toHaveProperty('schedule');
  });

  it('lets the LAST active schedule win, its omitted keys coming from the top level (not from earlier schedules)', () => {
    // Friday 14:00 UTC = 15:00 Berlin: schedules 0 and 1 both active.
    const s = activeSettings(pool, at('2025-03-14T14:00:00Z'));
    expect(s).toEqual({ idleCount: 1, idleTimeMs: 10 * MIN, scaleFactor: 1.5, scaleFactorLimit: 3, schedule: 1 });
  });

  it('falls back to an earlier schedule when a later one is not active', () => {
    expect(activeSettings(pool, at('2025-03-14T16:30:00Z')).schedule).toBe(0); // Fri 17:30 Berlin, after 13-15 UTC
  });

  it('is active when ANY of a schedule\'s periods matches', () => {
    expect(activeSettings(pool, at('2025-01-01T00:10:00Z')).schedule).toBe(1); // New Year, a Wednesday
  });

  it('overrides scaleFactorLimit, and sets one the top level leaves out', () => {
    expect(activeSettings(pool, at('2025-03-15T22:10:00Z'))).toEqual({ idleCount: 0, idleTimeMs: 10 * MIN, scaleFactor: 0, scaleFactorLimit: 10, schedule: 2 });
    const noLimit: PoolConfig = { ...pool, scaleFactorLimit: undefined };
    delete (noLimit as { scaleFactorLimit?: number }).scaleFactorLimit;
    expect(activeSettings(noLimit, at('2025-03-15T22:10:00Z')).scaleFactorLimit).toBe(10);
    const off = activeSettings(noLimit, at('2025-03-15T12:00:00Z'));
    expect(off).not.toHaveProperty('scaleFactorLimit');
  });

  it('is DEFAULT_POOL\'s settings for DEFAULT_POOL', () => {
    expect(activeSettings(DEFAULT_POOL, 0)).toEqual({ idleCount: 0, idleTimeMs: 600_000, scaleFactor: 0 });
  });
});

describe('planPool', () => {
  const settings = (s: Partial<PoolSettings> = {}): PoolSettings => ({ idleCount: 0, idleTimeMs: 10 * MIN, scaleFactor: 0, ...s });
  const state = (idle: Array<[string, number]>, busy = 0, booting = 0): PoolState => ({ idle: idle.map(([id, idleSince]) => ({ id, idleSince })), busy, booting });
  const NOW = 1_000 * MIN;

  it('does nothing with the default settings', () => {
    expect(planPool(state([]), settings(), { maxMachines: 10 }, NOW)).toEqual({ desiredIdle: 0, create: 0, remove: [] });
    expect(planPool(state([], 7), settings(), { maxMachines: 10 }, NOW)).toEqual({ desiredIdle: 0, create: 0, remove: [] });
  });

  it('boots up to idleCount, counting idle and booting machines', () => {
    expect(planPool(state([]), settings({ idleCount: 3 }), { maxMachines: 10 }, NOW)).toMatchObject({ desiredIdle: 3, create: 3, remove: [] });
    expect(planPool(state([['a', NOW]], 0, 1), settings({ idleCount: 3 }), { maxMachines: 10 }, NOW)).toMatchObject({ create: 1 });
    expect(planPool(state([['a', NOW]], 0, 2), settings({ idleCount: 3 }), { maxMachines: 10 }, NOW)).toMatchObject({ create: 0, remove: [] });
  });

  it('grows the idle target with load: max(idleCount, min(ceil(scaleFactor × busy), scaleFactorLimit))', () => {
    const plan = (s: Partial<PoolSettings>, busy: number) => planPool(state([], busy), settings(s), { maxMachines: 100 }, NOW).desiredIdle;
    expect(plan({ idleCount: 1, scaleFactor: 0.5 }, 5)).toBe(3); // ceil(2.5)
    expect(plan({ idleCount: 1, scaleFactor: 0.5 }, 1)).toBe(1); // ceil(0.5) = 1
    expect(plan({ idleCount: 1, scaleFactor: 0.5 }, 0)).toBe(1);
    expect(plan({ idleCount: 1, scaleFactor: 0.5, scaleFactorLimit: 2 }, 5)).toBe(2);
    expect(plan({ idleCount: 4, scaleFactor: 0.5, scaleFactorLimit: 2 }, 5)).toBe(4); // idleCount is a floor
    expect(plan({ idleCount: 0, scaleFactor: 2 }, 7)).toBe(14);
    expect(plan({ idleCount: 0, scaleFactor: 2, scaleFactorLimit: 0 }, 7)).toBe(0);
    expect(plan({ idleCount: 2, scaleFactor: 0 }, 50)).toBe(2);
  });

  it('never aims above maxMachines − busy', () => {
    expect(planPool(state([], 8), settings({ idleCount: 5 }), { maxMachines: 10 }, NOW)).toMatchObject({ desiredIdle: 2, create: 2 });
    expect(planPool(state([], 10), settings({ idleCount: 5 }), { maxMachines: 10 }, NOW)).toMatchObject({ desiredIdle: 0, create: 0 });
    expect(planPool(state([], 6), settings({ scaleFactor: 1 }), { maxMachines: 10 }, NOW)).toMatchObject({ desiredIdle: 4, create: 4 });
  });

  it('creates only into the room left under maxMachines', () => {
    // busy 3 + booting 6 leaves room for 1, though the target (7) is 1 more than idle + booting.
    expect(planPool(state([], 3, 6), settings({ idleCount: 8 }), { maxMachines: 10 }, NOW)).toMatchObject({ desiredIdle: 7, create: 1 });
  });

  it('limits pool machines booting at once to maxGrowthRate', () => {
    const s = settings({ idleCount: 5 });
    expect(planPool(state([]), s, { maxMachines: 10, maxGrowthRate: 2 }, NOW).create).toBe(2);
    expect(planPool(state([], 0, 1), s, { maxMachines: 10, maxGrowthRate: 2 }, NOW).create).toBe(1);
    expect(planPool(state([], 0, 2), s, { maxMachines: 10, maxGrowthRate: 2 }, NOW).create).toBe(0);
    expect(planPool(state([], 0, 3), s, { maxMachines: 10, maxGrowthRate: 2 }, NOW).create).toBe(0);
    // Idle machines do not use up the growth rate.
    expect(planPool(state([['a', NOW], ['b', NOW]]), s, { maxMachines: 10, maxGrowthRate: 2 }, NOW).create).toBe(2);
  });

  it('never plans busy + idle + booting + create above maxMachines, nor create above the growth rate', () => {
    const violations: string[] = [];
    let cases = 0;
    for (let max = 1; max <= 6; max++)
      for (let busy = 0; busy <= max + 1; busy++)
        for (let idle = 0; idle <= max + 1; idle++)
          for (let booting = 0; booting <= 3; booting++)
            for (const idleCount of [0, 1, max])
              for (const scaleFactor of [0, 0.5, 3])
                for (const growth of [undefined, 1, 2]) {
                  cases++;
                  const st = state(Array.from({ length: idle }, (_, i): [string, number] => [`m${i}`, NOW - i * MIN]), busy, booting);
                  const p = planPool(st, settings({ idleCount, scaleFactor }), { maxMachines: max, ...(growth !== undefined && { maxGrowthRate: growth }) }, NOW);
                  const broken = [
                    p.create < 0 && 'create < 0',
                    p.create > 0 && busy + idle + booting + p.create > max && 'over maxMachines',
                    growth !== undefined && p.create > 0 && booting + p.create > growth && 'over maxGrowthRate',
                    p.desiredIdle > Math.max(0, max - busy) && 'desiredIdle over maxMachines - busy',
                    p.create > 0 && p.remove.length > 0 && 'creates and removes at once',
                    p.remove.length > idle && 'removes more than are idle',
                  ].filter(Boolean);
                  if (broken.length) violations.push(`${broken.join(', ')}: ${JSON.stringify({ max, busy, idle, booting, idleCount, scaleFactor, growth, p })}`);
                }
    expect(cases).toBeGreaterThan(10_000);
    expect(violations).toEqual([]);
  });

  it('removes excess idle machines idle the longest first, once idle for idleTimeMs', () => {
    const idle = state([['new', NOW - 1 * MIN], ['oldest', NOW - 30 * MIN], ['older', NOW - 20 * MIN], ['old', NOW - 11 * MIN]]);
    // Target 1 of 4: three to go, all idle > 10 min except "new".
    expect(planPool(idle, settings({ idleCount: 1 }), { maxMachines: 10 }, NOW)).toEqual({ desiredIdle: 1, create: 0, remove: ['oldest', 'older', 'old'] });
    // Target 0: "new" is excess too, but only removable 9 minutes from now.
    expect(planPool(idle, settings(), { maxMachines: 10 }, NOW)).toEqual({
      desiredIdle: 0, create: 0, remove: ['oldest', 'older', 'old'], nextRemovalAt: NOW + 9 * MIN,
    });
    // Target 3: only the single longest-idle one.
    expect(planPool(idle, settings({ idleCount: 3 }), { maxMachines: 10 }, NOW).remove).toEqual(['oldest']);
  });

  it('removes fewer this round when the longest idle are not idle long enough yet, and says when to come back', () => {
    const idle = state([['a', NOW - 5 * MIN], ['b', NOW - 2 * MIN], ['c', NOW - 8 * MIN]]);
    const p = planPool(idle, settings({ idleTimeMs: 6 * MIN }), { maxMachines: 10 }, NOW);
    expect(p).toEqual({ desiredIdle: 0, create: 0, remove: ['c'], nextRemovalAt: NOW + 1 * MIN }); // a: idle 5 of 6 min
    // At that time, "a" goes; "b" is next.
    expect(planPool(state([['a', NOW - 5 * MIN], ['b', NOW - 2 * MIN]]), settings({ idleTimeMs: 6 * MIN }), { maxMachines: 10 }, NOW + MIN)).toEqual({
      desiredIdle: 0, create: 0, remove: ['a'], nextRemovalAt: NOW + 4 * MIN,
    });
    // Nothing removable yet: nothing removed, the earliest time given.
    expect(planPool(state([['b', NOW - 2 * MIN]]), settings({ idleTimeMs: 6 * MIN }), { maxMachines: 10 }, NOW)).toEqual({
      desiredIdle: 0, create: 0, remove: [], nextRemovalAt: NOW + 4 * MIN,
    });
  });

  it('removes at exactly idleTimeMs', () => {
    expect(planPool(state([['a', NOW - 10 * MIN]]), settings(), { maxMachines: 10 }, NOW).remove).toEqual(['a']);
    expect(planPool(state([['a', NOW - 10 * MIN + 1]]), settings(), { maxMachines: 10 }, NOW)).toMatchObject({ remove: [], nextRemovalAt: NOW + 1 });
  });

  it('gives no nextRemovalAt when nothing is in excess', () => {
    const p = planPool(state([['a', NOW], ['b', NOW]]), settings({ idleCount: 2 }), { maxMachines: 10 }, NOW);
    expect(p).toEqual({ desiredIdle: 2, create: 0, remove: [] });
    expect(p).not.toHaveProperty('nextRemovalAt');
  });

  it('counts booting machines toward the target, so they make idle ones excess, but only idle ones are removed', () => {
    // Target 2, 3 idle + 1 booting: 2 in excess.
    const p = planPool(state([['a', 0], ['b', MIN], ['c', 2 * MIN]], 0, 1), settings({ idleCount: 2 }), { maxMachines: 10 }, NOW);
    expect(p.remove).toEqual(['a', 'b']);
    // Target 0, 1 idle + 3 booting: at most the one idle machine.
    expect(planPool(state([['a', 0]], 0, 3), settings(), { maxMachines: 10 }, NOW).remove).toEqual(['a']);
  });

  it('keeps more machines when load raises the target (scale factor), removes them when it falls', () => {
    const idle = state([['a', 0], ['b', 0], ['c', 0]], 6);
    expect(planPool(idle, settings({ scaleFactor: 0.5 }), { maxMachines: 20 }, NOW)).toEqual({ desiredIdle: 3, create: 0, remove: [] });
    expect(planPool({ ...idle, busy: 2 }, settings({ scaleFactor: 0.5 }), { maxMachines: 20 }, NOW).remove).toEqual(['a', 'b']);
  });

  it('breaks idleSince ties by id, so the same state gives the same plan', () => {
    expect(planPool(state([['z', 0], ['m', 0], ['a', 0]]), settings({ idleCount: 1 }), { maxMachines: 10 }, NOW).remove).toEqual(['a', 'm']);
  });

  it('removes machines above maxMachines at once, idle time or not (only the overflow)', () => {
    const fresh = state([['a', NOW - 2 * MIN], ['b', NOW - 1 * MIN]], 4);
    expect(planPool(fresh, settings({ idleCount: 2 }), { maxMachines: 4 }, NOW)).toEqual({ desiredIdle: 0, create: 0, remove: ['a', 'b'] });
    // One over the cap: the longest idle goes now, the other after its idle time.
    expect(planPool({ ...fresh, busy: 3 }, settings(), { maxMachines: 4 }, NOW)).toEqual({
      desiredIdle: 0, create: 0, remove: ['a'], nextRemovalAt: NOW - MIN + 10 * MIN,
    });
  });

  it('does not change its inputs', () => {
    const idle = [{ id: 'b', idleSince: 5 }, { id: 'a', idleSince: 1 }];
    const st: PoolState = Object.freeze({ idle: Object.freeze(idle.map((m) => Object.freeze(m))), busy: 0, booting: 0 });
    expect(planPool(st, settings({ idleTimeMs: 0 }), { maxMachines: 3 }, NOW).remove).toEqual(['a', 'b']);
    expect(st.idle.map((m) => m.id)).toEqual(['b', 'a']);
  });
});
