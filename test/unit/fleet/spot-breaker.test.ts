import { describe, expect, it } from 'vitest';

import { DEFAULT_SPOT_BREAKER, SpotBreaker, decideSpotBreaker, type SpotBreakerChange } from '../../../src/fleet/spot-breaker.js';
import { FakeClock } from '../executors/fakes.js';

const MIN = 60_000;
const s = DEFAULT_SPOT_BREAKER;

describe('decideSpotBreaker', () => {
  const t0 = 1_000 * MIN;
  it.each([
    { name: 'no interruption', recent: [], at: undefined, open: false, reason: 'below_threshold' },
    { name: 'one interruption', recent: [], at: t0, open: false, reason: 'below_threshold' },
    { name: 'two within 15 minutes', recent: [t0 - 14 * MIN], at: t0, open: true, reason: 'interruptions_in_window' },
    { name: 'two, the first out of the window', recent: [t0 - 15 * MIN], at: t0, open: false, reason: 'below_threshold' },
  ])('$name → open $open ($reason)', ({ recent, at, open, reason }) => {
    const d = decideSpotBreaker({ recent }, s, t0, at);
    expect(d).toMatchObject({ open, reason });
  });

  it('stays open for onDemandFor, then closes with its own reason, then is closed as usual', () => {
    const opened = decideSpotBreaker({ recent: [0] }, s, MIN, MIN);
    expect(opened.state.openUntil).toBe(31 * MIN);
    expect(decideSpotBreaker(opened.state, s, 31 * MIN - 1)).toMatchObject({ open: true, reason: 'open_period' });
    const closed = decideSpotBreaker(opened.state, s, 31 * MIN);
    expect(closed).toMatchObject({ open: false, reason: 'open_period_over' });
    expect(decideSpotBreaker(closed.state, s, 32 * MIN)).toMatchObject({ open: false, reason: 'below_threshold' });
  });

  it('needs a new burst after an open period: the interruptions that opened it are spent', () => {
    const opened = decideSpotBreaker({ recent: [0] }, s, MIN, MIN);
    expect(decideSpotBreaker(opened.state, s, 31 * MIN, 31 * MIN)).toMatchObject({ open: false });
  });

  it('reopens at once when interruptions kept coming while it was open', () => {
    const opened = decideSpotBreaker({ recent: [0] }, s, MIN, MIN);
    const during = decideSpotBreaker(decideSpotBreaker(opened.state, s, 20 * MIN, 20 * MIN).state, s, 25 * MIN, 25 * MIN);
    expect(during).toMatchObject({ open: true, reason: 'open_period' });
    expect(decideSpotBreaker(during.state, s, 31 * MIN)).toMatchObject({ open: true, reason: 'interruptions_in_window' });
  });

  it('honours its settings', () => {
    const three = { interruptions: 3, windowMs: 5 * MIN, onDemandForMs: MIN };
    expect(decideSpotBreaker({ recent: [0, MIN] }, three, 2 * MIN, 2 * MIN)).toMatchObject({ open: true, state: { openUntil: 3 * MIN } });
    expect(decideSpotBreaker({ recent: [0, MIN] }, three, 6 * MIN, 6 * MIN)).toMatchObject({ open: false });
  });
});

describe('SpotBreaker', () => {
  it('opens after two interruptions on its clock, says so once, and closes after the period', () => {
    const clock = new FakeClock(0);
    const changes: SpotBreakerChange[] = [];
    const b = new SpotBreaker(s, clock, (c) => changes.push(c));
    b.record();
    expect(b.onDemandOnly()).toBe(false);
    clock.advance(10 * MIN);
    b.record();
    expect(b.onDemandOnly()).toBe(true);
    expect(changes).toEqual([{ open: true, reason: 'interruptions_in_window', until: 40 * MIN, interruptions: 2 }]);
    clock.advance(29 * MIN);
    expect(b.onDemandOnly()).toBe(true);
    clock.advance(MIN);
    expect(b.onDemandOnly()).toBe(false);
    expect(b.onDemandOnly()).toBe(false);
    expect(changes.slice(1)).toEqual([{ open: false, reason: 'open_period_over', interruptions: 0 }]);
  });
});
