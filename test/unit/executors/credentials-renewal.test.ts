// When a job's AWS session is renewed (src/executors/credentials-refresher.ts planRenewal): at half its
// life (at once when taken over), after a failure again with backoff, once more at expiry, and then never
// (the job stops).
import { describe, expect, it } from 'vitest';

import { planRenewal, RETRY_FIRST_MS, RETRY_MAX_MS } from '../../../src/executors/credentials-refresher.js';

const MIN = 60_000;

describe('planRenewal', () => {
  const t0 = 1_000_000;
  it.each([
    ['a fresh session: at half its life', { receivedAt: t0, expiresAt: t0 + 60 * MIN, failures: 0 }, t0, { kind: 'renew', at: t0 + 30 * MIN, reason: 'half_life' }],
    ['one failure: 10 s later', { receivedAt: t0, expiresAt: t0 + 60 * MIN, failures: 1, lastFailureAt: t0 + 30 * MIN }, t0 + 30 * MIN, { kind: 'renew', at: t0 + 30 * MIN + RETRY_FIRST_MS, reason: 'retry' }],
    ['three failures: 40 s later', { receivedAt: t0, expiresAt: t0 + 60 * MIN, failures: 3, lastFailureAt: t0 + 31 * MIN }, t0 + 31 * MIN, { kind: 'renew', at: t0 + 31 * MIN + 4 * RETRY_FIRST_MS, reason: 'retry' }],
    ['many failures: at most 5 min later', { receivedAt: t0, expiresAt: t0 + 600 * MIN, failures: 12, lastFailureAt: t0 + 300 * MIN }, t0 + 300 * MIN, { kind: 'renew', at: t0 + 300 * MIN + RETRY_MAX_MS, reason: 'retry' }],
    ['a retry past expiry: once more at expiry', { receivedAt: t0, expiresAt: t0 + 60 * MIN, failures: 6, lastFailureAt: t0 + 58 * MIN }, t0 + 58 * MIN, { kind: 'renew', at: t0 + 60 * MIN, reason: 'last_try' }],
    ['the last try at expiry failed: expired', { receivedAt: t0, expiresAt: t0 + 60 * MIN, failures: 7, lastFailureAt: t0 + 60 * MIN }, t0 + 60 * MIN, { kind: 'expired' }],
    ['slept past expiry with no failure: renew at once', { receivedAt: t0, expiresAt: t0 + 60 * MIN, failures: 0 }, t0 + 70 * MIN, { kind: 'renew', at: t0 + 30 * MIN, reason: 'half_life' }],
    ['taken over from a predecessor: renew at once, even past expiry', { receivedAt: t0 + 70 * MIN, expiresAt: t0 + 60 * MIN, failures: 0, renewAt: t0 + 70 * MIN }, t0 + 70 * MIN, { kind: 'renew', at: t0 + 70 * MIN, reason: 'taken_over' }],
  ])('%s', (_name, state, now, decision) => {
    expect(planRenewal(state, now)).toEqual(decision);
  });
});
