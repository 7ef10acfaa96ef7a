import { describe, expect, it } from 'vitest';
import { parseGoDuration } from '../../../src/jobs/index.js';

describe('parseGoDuration', () => {
  it.each([
    ['10m', 600_000],
    ['30s', 30_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['500ms', 500],
    ['2h45m30.5s', 9_930_500],
    ['0', 0],
    [' 5m ', 300_000],
  ])('%s → %d ms', (s, ms) => expect(parseGoDuration(s)).toBe(ms));

  it.each(['', '10', 'm', '-5m', '5 m', '5x', '1h 30m', 'abc'])('rejects %j', (s) => {
    expect(parseGoDuration(s)).toBeUndefined();
  });
});
