import { describe, expect, it } from 'vitest';

import { watchdogDecision } from '../../../src/agent/ssh-agent.js';

const limits = { idleMs: 30 * 60_000, maxLifetimeMs: 24 * 3_600_000 };
const t0 = Date.UTC(2026, 0, 1);

describe('the Fargate agent\'s watchdog', () => {
  it.each([
    ['just started, nothing written yet', t0 + 60_000, 0, { kind: 'keep' }],
    ['a heartbeat a minute ago', t0 + 3_600_000, t0 + 3_540_000, { kind: 'keep' }],
    ['no heartbeat nor job activity for 30 minutes', t0 + 3_600_000, t0 + 1_800_000, { kind: 'exit', reason: 'idle' }],
    ['never held by anyone for 30 minutes', t0 + 1_800_000, 0, { kind: 'exit', reason: 'idle' }],
    ['busy but 24 hours old', t0 + 24 * 3_600_000, t0 + 24 * 3_600_000 - 1, { kind: 'exit', reason: 'max_lifetime' }],
  ])('%s', (_name, now, activity, want) => {
    expect(watchdogDecision(now, t0, activity, limits)).toEqual(want);
  });
});
