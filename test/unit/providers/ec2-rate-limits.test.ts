import { describe, expect, it } from 'vitest';

import type { Clock } from '../../../src/core/index.js';
import { RequestPacer } from '../../../src/providers/ec2/request-pacer.js';
import { backoffDelay, withThrottleRetry } from '../../../src/providers/ec2/throttle-retry.js';

class StepClock implements Clock {
  t = 0;
  readonly sleeps: number[] = [];
  now = () => this.t;
  sleep = async (ms: number) => {
    this.sleeps.push(ms);
    this.t += ms;
  };
}

const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });

describe('backoff with jitter', () => {
  it.each([
    [1, 0, 500],
    [1, 0.999, 1000],
    [2, 0.5, 1500],
    [3, 0, 2000],
    [10, 1, 20000],
  ])('attempt %i with random %f waits %i ms', (attempt, r, ms) => {
    expect(backoffDelay(attempt, 1000, 20_000, () => r)).toBe(ms);
  });
});

describe('withThrottleRetry', () => {
  it('retries throttling and transient errors, then succeeds', async () => {
    const clock = new StepClock();
    let n = 0;
    const errs = [throttled(), Object.assign(new Error('hang up'), { code: 'ECONNRESET' })];
    const v = await withThrottleRetry(async () => {
      const e = errs[n++];
      if (e) throw e;
      return 'ok';
    }, { clock, random: () => 1 });
    expect(v).toBe('ok');
    expect(clock.sleeps).toEqual([1000, 2000]);
  });

  it('gives up after the attempts, with the last error', async () => {
    const clock = new StepClock();
    let n = 0;
    await expect(withThrottleRetry(async () => { n++; throw throttled(); }, { clock, attempts: 3, random: () => 0 })).rejects.toThrow('Rate exceeded');
    expect(n).toBe(3);
    expect(clock.sleeps).toEqual([500, 1000]);
  });

  it('does not retry capacity or permanent errors', async () => {
    for (const [name, status] of [['InsufficientInstanceCapacity', 500], ['InvalidParameterValue', 400]] as const) {
      let n = 0;
      await expect(withThrottleRetry(async () => { n++; throw Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } }); }, { clock: new StepClock() })).rejects.toThrow(name);
      expect(n).toBe(1);
    }
  });
});

describe('RunInstances pacing', () => {
  it('lets a burst of 5 through, then one request every 500 ms', async () => {
    const clock = new StepClock();
    const pacer = new RequestPacer({ clock });
    for (let i = 0; i < 5; i++) await pacer.take();
    expect(clock.sleeps).toEqual([]);
    await pacer.take();
    await pacer.take();
    // 500 ms per token, plus the margin for the call's way to EC2 (its bucket counts arrivals).
    expect(clock.sleeps).toEqual([600, 500]);
  });

  it('has no margin when told so, and says how many tokens are left', async () => {
    const clock = new StepClock();
    const pacer = new RequestPacer({ clock, marginMs: 0 });
    expect(pacer.available()).toBe(5);
    for (let i = 0; i < 5; i++) await pacer.take();
    expect(pacer.available()).toBe(0);
    await pacer.take();
    expect(clock.sleeps).toEqual([500]);
  });

  it('queues concurrent callers behind each other', async () => {
    // All three ask at the same instant: time stands still until their sleeps end.
    const clock = new StepClock();
    clock.sleep = async (ms: number) => void clock.sleeps.push(ms);
    const pacer = new RequestPacer({ clock, burst: 1, perSecond: 2, marginMs: 0 });
    await Promise.all([pacer.take(), pacer.take(), pacer.take()]);
    expect(clock.sleeps).toEqual([500, 1000]);
  });
});
