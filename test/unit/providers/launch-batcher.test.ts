import { describe, expect, it } from 'vitest';

import type { Clock } from '../../../src/core/clock.js';
import { LaunchBatcher } from '../../../src/providers/ec2/launch-batcher.js';
import { RequestPacer } from '../../../src/providers/ec2/request-pacer.js';

/** Sleeps end on the next turn of the event loop and move time forward. */
function virtualClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: (ms: number) => new Promise<void>((r) => setImmediate(() => ((c.t += ms), r()))),
  };
  return c;
}

describe('LaunchBatcher.batchSize', () => {
  it('sends one launch per call while the bucket has a token for each', () => {
    expect(LaunchBatcher.batchSize(1, 4, 50)).toBe(1);
    expect(LaunchBatcher.batchSize(5, 4, 50)).toBe(1);
  });
  it('spreads a longer queue over the tokens left, at most maxBatch', () => {
    expect(LaunchBatcher.batchSize(6, 4, 50)).toBe(2);
    expect(LaunchBatcher.batchSize(300, 4, 50)).toBe(50);
    expect(LaunchBatcher.batchSize(40, 0, 50)).toBe(40);
    expect(LaunchBatcher.batchSize(40, 0, 1)).toBe(1);
  });
});

describe('LaunchBatcher', () => {
  it('batches only launches of the same key, and resolves each with its own result', async () => {
    const clock = virtualClock();
    const calls: Array<{ key: string; count: number; at: number }> = [];
    let seq = 0;
    const b = new LaunchBatcher<{ id: string }, string>({
      pacer: new RequestPacer({ clock, burst: 1, perSecond: 2, marginMs: 0 }),
      maxBatch: 10,
      prepare: async () => undefined,
      launch: async (_p, key, count) => {
        calls.push({ key: key.id, count, at: clock.now() });
        return Array.from({ length: count }, () => ({ ok: true as const, value: `${key.id}-${++seq}` }));
      },
    });
    const a = Array.from({ length: 3 }, () => b.launch({ id: 'a' }));
    const o = Array.from({ length: 2 }, () => b.launch({ id: 'od' }));
    const got = await Promise.all([...a, ...o]);
    expect(new Set(got).size).toBe(5);
    expect(got.slice(0, 3).every((v) => v.startsWith('a-'))).toBe(true);
    expect(got.slice(3).every((v) => v.startsWith('od-'))).toBe(true);
    expect(calls.map((c) => [c.key, c.count])).toEqual([['a', 3], ['od', 2]]);
    expect(calls[1]!.at - calls[0]!.at).toBe(500); // one token per call, refilled at 2 per second
  });

  it('fails every launch of a call that throws, and only those', async () => {
    const clock = virtualClock();
    let n = 0;
    const b = new LaunchBatcher<{ id: string }, number>({
      pacer: new RequestPacer({ clock }),
      maxBatch: 10,
      prepare: async () => undefined,
      launch: async (_p, _k, count) => {
        const call = n++;
        if (call === 0) throw new Error('AccessDenied');
        if (call === 2) return [{ ok: false as const, error: new Error('no capacity') }];
        return Array.from({ length: count }, (_, i) => ({ ok: true as const, value: i }));
      },
    });
    const first = await Promise.allSettled([b.launch({ id: 'k' }), b.launch({ id: 'k' })]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'fulfilled']); // 2 launches, 5 tokens: one call each
    const second = await Promise.allSettled([b.launch({ id: 'k' })]);
    expect(second[0]!.status).toBe('rejected');
    expect((second[0] as PromiseRejectedResult).reason.message).toBe('no capacity');
  });

  it('a launch that cannot be prepared fails every launch of its key, and takes no token', async () => {
    const clock = virtualClock();
    const pacer = new RequestPacer({ clock, burst: 2 });
    const b = new LaunchBatcher<{ id: string }, number>({
      pacer,
      maxBatch: 10,
      prepare: async (k) => {
        if (k.id === 'bad') throw new Error('no image');
        return undefined;
      },
      launch: async (_p, _k, count) => Array.from({ length: count }, (_, i) => ({ ok: true as const, value: i })),
    });
    const r = await Promise.allSettled([b.launch({ id: 'bad' }), b.launch({ id: 'good' }), b.launch({ id: 'bad' })]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
    expect(pacer.available()).toBe(1);
  });
});
