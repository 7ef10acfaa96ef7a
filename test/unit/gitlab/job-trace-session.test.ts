import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/core/clock.js';
import { success } from '../../../src/core/outcome.js';
import type { TraceLog } from '../../../src/core/trace.js';
import type { JobStateResponse, TracePatchResponse, UpdateJobBody } from '../../../src/gitlab/api-types.js';
import { JobTraceSession, type JobTraceSessionOptions } from '../../../src/gitlab/job-trace-session.js';
import { jobPayload } from '../../helpers/job-payload.js';

// Clock whose sleeps only end by abort: shows what happens when time does not move.
const frozen: Clock = {
  now: () => 0,
  sleep: (_ms, signal) => new Promise((_r, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true })),
};

const emptyTrace: TraceLog = { size: 0, checksum: () => 'crc32:00000000', read: async () => new Uint8Array() };

function api(put: (body: UpdateJobBody) => JobStateResponse): JobTraceSessionOptions['api'] & { bodies: UpdateJobBody[] } {
  const bodies: UpdateJobBody[] = [];
  return {
    bodies,
    async updateJob(_id, _token, body, options) {
      if (options?.signal?.aborted) throw options.signal.reason;
      bodies.push(body);
      return put(body);
    },
    async patchTrace(): Promise<TracePatchResponse> {
      throw new Error('nothing to patch');
    },
  };
}

describe('JobTraceSession lifecycle', () => {
  it('stop() ends a final update that is waiting to retry', async () => {
    const a = api(() => ({ status: 500 }));
    const s = new JobTraceSession({ api: a, job: jobPayload({ id: 1, token: 't' }), trace: emptyTrace, clock: frozen });
    const done = s.finish(success);
    await new Promise((r) => setImmediate(r));
    await s.stop();
    expect(await done).toEqual({ accepted: false, abandoned: true, failedRounds: 1, lastStatus: 500 });
    expect(a.bodies).toHaveLength(1);
  });

  it('refuses to finish twice or start after finishing', async () => {
    const s = new JobTraceSession({ api: api(() => ({ status: 200 })), job: jobPayload({ id: 1, token: 't' }), trace: emptyTrace, clock: frozen });
    await s.finish(success);
    await expect(s.finish(success)).rejects.toThrow(/phase done/);
    expect(() => s.start()).toThrow(/phase done/);
  });

  it('a failing callback does not break the session', async () => {
    const a = api(() => ({ status: 200, jobStatus: 'canceling' }));
    const clock: Clock = { now: (() => { let t = 0; return () => (t += 40_000); })(), sleep: () => new Promise((r) => setImmediate(r)) };
    const s = new JobTraceSession({
      api: a, job: jobPayload({ id: 1, token: 't' }), trace: emptyTrace, clock,
      onCancel: () => { throw new Error('boom'); },
    });
    s.start();
    while (a.bodies.length < 2) await new Promise((r) => setImmediate(r));
    expect(await s.finish(success)).toMatchObject({ accepted: true });
  });
});

const MiB = 1024 * 1024;

/** A log whose size the test sets, telling its listeners as it grows (its bytes are zeros). */
function growingTrace(initial: number): TraceLog & { grow(n: number): void } {
  let size = initial;
  const listeners = new Set<(n: number) => void>();
  return {
    get size() {
      return size;
    },
    checksum: () => undefined,
    read: async (offset, length) => new Uint8Array(Math.max(0, Math.min(length, size - offset))),
    onGrowth(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    grow(n) {
      size += n;
      for (const l of listeners) l(size);
    },
  };
}

/** PATCHes answered by `answer` (recorded by start offset); PUTs answered 200. */
function patchingApi(answer: (start: number, length: number) => TracePatchResponse): JobTraceSessionOptions['api'] & { starts: number[] } {
  const starts: number[] = [];
  return {
    starts,
    async updateJob(_id, _token, _body, options) {
      if (options?.signal?.aborted) throw options.signal.reason;
      return { status: 200 };
    },
    async patchTrace(_id, _token, start, bytes, options) {
      if (options?.signal?.aborted) throw options.signal.reason;
      starts.push(start);
      return answer(start, bytes.length);
    },
  };
}

/** Lets timers run: resolves only if the event loop is not kept busy by the session. */
const turns = () => new Promise((r) => setTimeout(r, 20));

describe('JobTraceSession waiting for its tick', () => {
  const accept = (start: number, length: number): TracePatchResponse => ({ status: 202, rangeEnd: start + length });

  it.each(['finish', 'stop', 'handOff'] as const)('%s() ends a tick being waited for (time does not move)', async (how) => {
    const a = patchingApi(accept);
    const trace = growingTrace(10);
    const s = new JobTraceSession({ api: a, job: jobPayload({ id: 1, token: 't' }), trace, clock: frozen });
    await s.acknowledge();
    s.start();
    await turns(); // waiting for the first tick, which never comes by itself
    expect(a.starts).toEqual([]);
    if (how === 'finish') expect(await s.finish(success)).toMatchObject({ accepted: true });
    else if (how === 'handOff') expect(await s.handOff()).toBe(10);
    else await s.stop();
    expect(a.starts).toEqual(how === 'stop' ? [] : [0]);
  });

  it('a full piece ends the wait at once, and the next PATCH follows', async () => {
    const a = patchingApi(accept);
    const trace = growingTrace(10);
    const s = new JobTraceSession({ api: a, job: jobPayload({ id: 1, token: 't' }), trace, clock: frozen });
    s.start();
    await turns();
    trace.grow(MiB);
    await turns();
    expect(a.starts).toEqual([0]);
    await s.stop();
  });

  it.each([
    ['GitLab answered 404', { status: 404 }],
    ['the PATCH failed', { status: 500 }],
    ['GitLab answered 416', { status: 416, rangeEnd: 0 }],
  ] as const)('after %s, a full piece waiting does not cut the wait short', async (_what, answer) => {
    const a = patchingApi(() => answer);
    const trace = growingTrace(2 * MiB); // a full piece from the start: the first PATCH goes at once
    const s = new JobTraceSession({ api: a, job: jobPayload({ id: 1, token: 't' }), trace, clock: frozen });
    s.start();
    await turns();
    trace.grow(2 * MiB);
    await turns(); // would never resolve if the loop spun on a full piece it may not send
    expect(a.starts).toEqual([0]);
    await s.stop();
  });
});
