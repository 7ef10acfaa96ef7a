import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../../src/gitlab/backoff.js';
import type { HttpRequest, HttpResponse, Requester } from '../../../src/gitlab/requester.js';
import { headerWaitMs, isRetriedStatus, RetryRequester } from '../../../src/gitlab/retry-requester.js';

const NOW = Date.UTC(2015, 9, 21, 7, 27, 0); // Wed, 21 Oct 2015 07:27:00 GMT

function answers(...statuses: Array<number | [number, Record<string, string>]>): Requester & { calls: number } {
  const queue = [...statuses];
  const r = {
    calls: 0,
    async do(_req: HttpRequest): Promise<HttpResponse> {
      r.calls++;
      const next = queue.shift() ?? 200;
      const [status, headers] = Array.isArray(next) ? next : [next, {}];
      return { status, headers: new Headers(headers), body: new Uint8Array() };
    },
  };
  return r;
}

function fakeClock() {
  const sleeps: number[] = [];
  return { sleeps, now: () => NOW, sleep: async (ms: number) => void sleeps.push(ms) };
}

const req: HttpRequest = { method: 'POST', url: 'http://gitlab.test/api/v4/jobs/request', json: {} };

describe('RetryRequester', () => {
  it.each([408, 429, 500, 502, 503, 504, 512, 520, 599])('retries %i', async (status) => {
    const inner = answers(status, 201);
    const clock = fakeClock();
    const res = await new RetryRequester(inner, { clock, random: () => 0 }).do(req);
    expect(res.status).toBe(201);
    expect(inner.calls).toBe(2);
  });

  it.each([200, 201, 204, 400, 401, 403, 404, 409, 412, 416, 422, 501, 505, 511])('does not retry %i', async (status) => {
    const inner = answers(status, 201);
    const clock = fakeClock();
    const res = await new RetryRequester(inner, { clock }).do(req);
    expect(res.status).toBe(status);
    expect(inner.calls).toBe(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('gives up after 5 attempts and returns the last answer, without waiting after the last', async () => {
    const inner = answers(503, 503, 503, 503, 502, 201);
    const clock = fakeClock();
    const res = await new RetryRequester(inner, { clock, random: () => 1 }).do(req);
    expect(res.status).toBe(502);
    expect(inner.calls).toBe(5);
    expect(clock.sleeps).toHaveLength(4);
  });

  it('waits as long as Retry-After says', async () => {
    const inner = answers([429, { 'Retry-After': '7' }]);
    const clock = fakeClock();
    await new RetryRequester(inner, { clock }).do(req);
    expect(clock.sleeps).toEqual([7000]);
  });

  it('prefers RateLimit-ResetTime (RFC 1123) over Retry-After', async () => {
    const inner = answers([429, { 'RateLimit-ResetTime': 'Wed, 21 Oct 2015 07:28:00 GMT', 'Retry-After': '7' }]);
    const clock = fakeClock();
    await new RetryRequester(inner, { clock }).do(req);
    expect(clock.sleeps).toEqual([60_000]);
  });

  it('falls back to Retry-After when the reset time is past or unparsable', () => {
    expect(headerWaitMs(new Headers({ 'RateLimit-ResetTime': 'Wed, 21 Oct 2015 07:26:00 GMT', 'Retry-After': '3' }), NOW)).toBe(3000);
    expect(headerWaitMs(new Headers({ 'RateLimit-ResetTime': 'tomorrow', 'Retry-After': '3' }), NOW)).toBe(3000);
    expect(headerWaitMs(new Headers({ 'Retry-After': 'soon' }), NOW)).toBeUndefined();
    expect(headerWaitMs(new Headers({ 'Retry-After': '0' }), NOW)).toBeUndefined();
  });

  it('caps a wait named by a header', async () => {
    const inner = answers([429, { 'Retry-After': '999999' }]);
    const clock = fakeClock();
    await new RetryRequester(inner, { clock, maxHeaderWaitMs: 120_000 }).do(req);
    expect(clock.sleeps).toEqual([120_000]);
  });

  it('backs off exponentially from 100 ms when no header names a wait', async () => {
    const inner = answers(500, 500, 500, 500, 500);
    const clock = fakeClock();
    await new RetryRequester(inner, { clock, random: () => 0.999999 }).do(req);
    // upper edge of each jittered window: 100, 200, 400, 800
    expect(clock.sleeps.map(Math.round)).toEqual([100, 200, 400, 800]);
  });

  it('keeps jitter within [100 ms, 100·2^n] and never above 60 s', () => {
    const policy = { minMs: 100, maxMs: 60_000, jitter: true };
    for (let n = 0; n < 20; n++) {
      for (const r of [0, 0.25, 0.5, 0.99]) {
        const d = backoffDelayMs(n, policy, () => r);
        expect(d).toBeGreaterThanOrEqual(100);
        expect(d).toBeLessThanOrEqual(Math.min(60_000, 100 * 2 ** n));
      }
    }
    expect(backoffDelayMs(30, policy, () => 0.5)).toBe(60_000);
    expect(backoffDelayMs(0, policy, () => 0.7)).toBe(100);
  });

  it('stops waiting when the request is aborted', async () => {
    const inner = answers(503, 503);
    const ctl = new AbortController();
    const clock = {
      now: () => NOW,
      sleep: (_ms: number, signal?: AbortSignal) =>
        new Promise<void>((_r, reject) => {
          ctl.abort(new Error('stopping'));
          reject(signal?.reason);
        }),
    };
    await expect(new RetryRequester(inner, { clock }).do({ ...req, signal: ctl.signal })).rejects.toThrow('stopping');
    expect(inner.calls).toBe(1);
  });

  it('classifies statuses like gitlab-runner', () => {
    expect([408, 429, 500, 502, 503, 504, 512].every(isRetriedStatus)).toBe(true);
    expect([501, 505, 506, 510, 511, 499].some(isRetriedStatus)).toBe(false);
  });
});
