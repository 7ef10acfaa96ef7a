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
