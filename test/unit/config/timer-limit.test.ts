// systemClock.sleep, the one place domain code arms timers, honours delays past one Node timer's limit
// (2^31-1 ms, ~24.8 days): a month-long GitLab job timeout or a long shutdownTimeout must not turn into
// a 1 ms wait. (Here beside the config ranges it backs up; core/ has no unit test folder of its own.)
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { clampTimerDelay, MAX_TIMER_DELAY_MS, systemClock } from '../../../src/core/clock.js';

const DAY = 86_400_000;

describe('systemClock.sleep and the timer limit', () => {
  let delays: number[];
  beforeEach(() => {
    vi.useFakeTimers();
    delays = [];
    const real = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return real(fn, ms);
    }) as typeof setTimeout);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  function settled(p: Promise<void>): () => boolean {
    let done = false;
    void p.then(() => (done = true), () => (done = true));
    return () => done;
  }

  it('waits a full 30 days in timers of at most 2^31-1 ms each', async () => {
    const done = settled(systemClock.sleep(30 * DAY));
    await vi.advanceTimersByTimeAsync(MAX_TIMER_DELAY_MS + 10);
    expect(done()).toBe(false);
    await vi.advanceTimersByTimeAsync(30 * DAY - MAX_TIMER_DELAY_MS - 20);
    expect(done()).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    expect(done()).toBe(true);
    expect(delays).toEqual([MAX_TIMER_DELAY_MS, 30 * DAY - MAX_TIMER_DELAY_MS]);
  });

  it('arms one timer for an ordinary delay, exactly as asked', async () => {
    const done = settled(systemClock.sleep(1500));
    await vi.advanceTimersByTimeAsync(1499);
    expect(done()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done()).toBe(true);
    expect(delays).toEqual([1500]);
  });

  it('an abort during a later timer of a long wait rejects with its reason', async () => {
    const ctl = new AbortController();
    const p = systemClock.sleep(60 * DAY, ctl.signal);
    const outcome = p.then(() => 'resolved', (e: unknown) => e);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_DELAY_MS + 5);
    ctl.abort(new Error('stop'));
    expect(await outcome).toEqual(new Error('stop'));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('treats negative and NaN delays as 0, and an infinite one as "until aborted"', async () => {
    const neg = settled(systemClock.sleep(-5));
    const nan = settled(systemClock.sleep(Number.NaN));
    await vi.advanceTimersByTimeAsync(0);
    expect(neg()).toBe(true);
    expect(nan()).toBe(true);
    const ctl = new AbortController();
    const inf = settled(systemClock.sleep(Number.POSITIVE_INFINITY, ctl.signal));
    await vi.advanceTimersByTimeAsync(3 * MAX_TIMER_DELAY_MS);
    expect(inf()).toBe(false);
    ctl.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(inf()).toBe(true);
    expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_TIMER_DELAY_MS);
  });

  it('clampTimerDelay gives every setTimeout caller a delay Node honours', () => {
    expect(clampTimerDelay(30 * DAY)).toBe(MAX_TIMER_DELAY_MS);
    expect(clampTimerDelay(MAX_TIMER_DELAY_MS)).toBe(MAX_TIMER_DELAY_MS);
    expect(clampTimerDelay(1234)).toBe(1234);
    expect(clampTimerDelay(-1)).toBe(0);
    expect(clampTimerDelay(Number.NaN)).toBe(0);
    expect(MAX_TIMER_DELAY_MS).toBe(2_147_483_647);
  });
});
