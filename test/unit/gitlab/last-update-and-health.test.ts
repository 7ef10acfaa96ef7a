import { describe, expect, it } from 'vitest';
import { LastUpdateStore } from '../../../src/gitlab/last-update.js';
import { RunnerHealth } from '../../../src/gitlab/runner-health.js';
import { testToken } from '../../helpers/tokens.js';

const TOKEN = testToken('glrt-');

describe('LastUpdateStore', () => {
  it('keeps the last non-empty value per credentials', () => {
    const s = new LastUpdateStore();
    const a = LastUpdateStore.keyOf('https://gitlab.test', `glrt-${'a'.repeat(20)}`);
    const b = LastUpdateStore.keyOf('https://gitlab.test', `glrt-${'b'.repeat(20)}`);
    expect(s.get(a)).toBeUndefined();
    s.observe(a, 'q1');
    s.observe(a, '');
    s.observe(a, null);
    expect(s.get(a)).toBe('q1');
    s.observe(a, 'q2');
    expect(s.get(a)).toBe('q2');
    expect(s.get(b)).toBeUndefined();
  });

  it('keys never contain the token', () => {
    const key = LastUpdateStore.keyOf('https://gitlab.test', TOKEN);
    expect(key).not.toContain('secret');
    expect(key).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('RunnerHealth', () => {
  function clock() {
    let t = 0;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }

  it('skips the runner for 60 min after 3 consecutive 403s, then tries again', () => {
    const c = clock();
    const h = new RunnerHealth({ clock: c });
    h.record({ kind: 'forbidden' });
    h.record({ kind: 'forbidden' });
    expect(h.shouldRequest()).toBe(true);
    h.record({ kind: 'forbidden' });
    expect(h.shouldRequest()).toBe(false);
    expect(h.skippingUntil()).toBe(60 * 60_000);
    c.advance(60 * 60_000 - 1);
    expect(h.shouldRequest()).toBe(false);
    c.advance(1);
    expect(h.shouldRequest()).toBe(true);
    h.record({ kind: 'forbidden' });
    expect(h.shouldRequest()).toBe(true); // the count started afresh
  });

  it('any other answer resets the count; no answer changes nothing', () => {
    const h = new RunnerHealth({ clock: clock() });
    h.record({ kind: 'forbidden' });
    h.record({ kind: 'forbidden' });
    h.record({ kind: 'unavailable', status: 503, message: '' });
    h.record({ kind: 'forbidden' });
    h.record({ kind: 'forbidden' });
    h.record({ kind: 'error', status: 0, message: 'ECONNREFUSED' });
    expect(h.shouldRequest()).toBe(true);
    h.record({ kind: 'forbidden' });
    expect(h.shouldRequest()).toBe(false);
  });

  it('a 201 whose job cannot be read counts as unhealthy, like a 403', () => {
    const h = new RunnerHealth({ clock: clock() });
    h.record({ kind: 'forbidden' });
    h.record({ kind: 'error', status: 201, message: 'client error: not JSON' });
    expect(h.shouldRequest()).toBe(true);
    h.record({ kind: 'error', status: 201, message: 'client error: not JSON' });
    expect(h.shouldRequest()).toBe(false);
  });
});
