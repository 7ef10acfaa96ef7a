import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/index.js';
import { DEFAULT_POOL } from '../../../src/core/index.js';

const PLACEHOLDER = `glrt-${'x'.repeat(20)}`;

const base = `gitlab:
  url: http://127.0.0.1:8080
  token: ${PLACEHOLDER}
concurrent: 4
executors:
  - name: local
    provider: local
    style: shell
    maxMachines: 4
`;

/** The config above with `pool:` set to the given YAML block (written unindented here). */
function withPool(block: string): string {
  const indented = block
    .trim()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');
  return `${base}    pool:\n${indented}\n`;
}

function poolOf(block: string) {
  return parseConfigText(withPool(block)).executors[0]!.pool;
}

function errorOf(text: string): string {
  try {
    parseConfigText(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the config to be rejected');
}

describe('config: executors[].pool', () => {
  it('is DEFAULT_POOL when absent: nothing idle, a fresh machine per job', () => {
    const pool = parseConfigText(base).executors[0]!.pool;
    expect(pool).toEqual({ idleCount: 0, idleTimeMs: 600_000, scaleFactor: 0, maxUseCount: 1, schedules: [] });
    expect(pool).toEqual(DEFAULT_POOL);
    expect(pool).not.toHaveProperty('maxGrowthRate');
    expect(pool).not.toHaveProperty('scaleFactorLimit');
    expect(Object.isFrozen(pool)).toBe(true);
  });

  it('gives an empty pool block the same defaults as DEFAULT_POOL (schema and core agree)', () => {
    expect(poolOf('{}')).toEqual(DEFAULT_POOL);
  });

  it('compiles every key, durations to ms, and keeps omitted schedule keys absent', () => {
    const pool = poolOf(`
idleCount: 2
idleTime: 30m
maxUseCount: 5
maxGrowthRate: 3
scaleFactor: 0.5
scaleFactorLimit: 4
schedules:
  - periods: ["* 8-18 * * mon-fri"]
    timezone: Europe/Berlin
    idleCount: 4
    idleTime: 5m
  - periods: ["* * * * sat,sun", "0-30 0 1 * *"]
    scaleFactor: 1
    scaleFactorLimit: 0
`);
    expect(pool).toEqual({
      idleCount: 2,
      idleTimeMs: 1_800_000,
      maxUseCount: 5,
      maxGrowthRate: 3,
      scaleFactor: 0.5,
      scaleFactorLimit: 4,
      schedules: [
        { periods: ['* 8-18 * * mon-fri'], timezone: 'Europe/Berlin', idleCount: 4, idleTimeMs: 300_000 },
        { periods: ['* * * * sat,sun', '0-30 0 1 * *'], timezone: 'UTC', scaleFactor: 1, scaleFactorLimit: 0 },
      ],
    });
    expect(pool.schedules[0]).not.toHaveProperty('scaleFactor');
    expect(pool.schedules[1]).not.toHaveProperty('idleTimeMs');
    expect(Object.isFrozen(pool.schedules[1])).toBe(true);
    expect(Object.isFrozen(pool.schedules[1]!.periods)).toBe(true);
  });

  it('accepts idleCount and scaleFactorLimit equal to maxMachines', () => {
    expect(poolOf('idleCount: 4\nscaleFactorLimit: 4')).toMatchObject({ idleCount: 4, scaleFactorLimit: 4 });
  });

  describe('rejects, naming the key path', () => {
    it.each([
      ['idleCount: 5', 'executors[0].pool.idleCount: 5 is more than maxMachines (4)'],
      ['scaleFactorLimit: 9', 'executors[0].pool.scaleFactorLimit: 9 is more than maxMachines (4)'],
      [
        'schedules:\n  - periods: ["* * * * *"]\n    idleCount: 1\n  - periods: ["* * * * *"]\n    idleCount: 12',
        'executors[0].pool.schedules[1].idleCount: 12 is more than maxMachines (4)',
      ],
      ['schedules:\n  - periods: ["* * * * *"]\n    scaleFactorLimit: 5', 'executors[0].pool.schedules[0].scaleFactorLimit: 5 is more than maxMachines (4)'],
      [
        'schedules:\n  - periods: ["* 8-18 * * *", "0 * 8-18 * * mon-fri"]',
        'executors[0].pool.schedules[0].periods[1]: expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), got 6 in "0 * 8-18 * * mon-fri"',
      ],
      [
        'schedules:\n  - periods: ["0 0 * 8-18 * * 2030"]',
        'executors[0].pool.schedules[0].periods[0]: expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), got 7 in "0 0 * 8-18 * * 2030"',
      ],
      [
        'schedules:\n  - periods: ["@daily"]',
        'executors[0].pool.schedules[0].periods[0]: expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), got 1 in "@daily"',
      ],
      [
        'schedules:\n  - periods: ["* 8-18 * *"]',
        'executors[0].pool.schedules[0].periods[0]: expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), got 4 in "* 8-18 * *"',
      ],
      ['schedules:\n  - periods: []', 'executors[0].pool.schedules[0].periods: expected at least one cron period such as "* 8-18 * * mon-fri"'],
      ['schedules:\n  - timezone: UTC', 'executors[0].pool.schedules[0].periods: is required (expected array)'],
      [
        'schedules:\n  - periods: ["* * * * *"]\n    timezone: Mars/Olympus',
        'executors[0].pool.schedules[0].timezone: expected an IANA time zone such as UTC or Europe/Berlin, got "Mars/Olympus"',
      ],
      [
        'schedules:\n  - periods: ["* * * * *"]\n    timezone: "+01:00"',
        'executors[0].pool.schedules[0].timezone: expected an IANA time zone such as UTC or Europe/Berlin, got "+01:00"',
      ],
      ['idle: 3', 'executors[0].pool: unknown key "idle"'],
      ['schedules:\n  - periods: ["* * * * *"]\n    idleTimeMs: 1000', 'executors[0].pool.schedules[0]: unknown key "idleTimeMs"'],
    ])('%j', (block, message) => {
      expect(errorOf(withPool(block))).toBe(message);
    });

    it.each([
      ['* 25 * * *', /Field value \(25\) is out of range/],
      ['* 8-18 * * monday', /Unknown alias: day/],
      ['*/0 * * * *', /step of zero/],
      ['* 18-8 * * *', /invalid range/],
      ['* * 0 * *', /out of range/],
    ])('invalid cron %j', (period, detail) => {
      const msg = errorOf(withPool(`schedules:\n  - periods: ["* * * * *", "${period}"]`));
      expect(msg).toMatch(/^executors\[0\]\.pool\.schedules\[0\]\.periods\[1\]: ".*" is not a valid cron expression \(minute hour day-of-month month day-of-week\): /);
      expect(msg).toContain(JSON.stringify(period));
      expect(msg).toMatch(detail);
    });

    it.each([
      ['idleCount: -1', /^executors\[0\]\.pool\.idleCount: expected a whole number from 0 to 10000, got -1$/],
      ['idleCount: 1.5', /^executors\[0\]\.pool\.idleCount: expected a whole number .*, got 1\.5$/],
      ['maxUseCount: 0', /^executors\[0\]\.pool\.maxUseCount: expected a whole number from 1 to 100000, got 0$/],
      ['maxGrowthRate: 0', /^executors\[0\]\.pool\.maxGrowthRate: expected a whole number from 1 to 10000, got 0$/],
      ['scaleFactor: -0.5', /^executors\[0\]\.pool\.scaleFactor: expected a number from 0 to 100, got -0\.5$/],
      ['scaleFactorLimit: 2.5', /^executors\[0\]\.pool\.scaleFactorLimit: expected a whole number .*, got 2\.5$/],
      ['idleTime: soon', /^executors\[0\]\.pool\.idleTime: expected a duration such as 30s, 5m or 1h30m, got "soon"$/],
      ['schedules:\n  - periods: ["* * * * *"]\n    idleTime: later', /^executors\[0\]\.pool\.schedules\[0\]\.idleTime: expected a duration/],
      ['schedules:\n  - periods: ["* * * * *"]\n    idleCount: -2', /^executors\[0\]\.pool\.schedules\[0\]\.idleCount: expected a whole number from 0 to 10000, got -2$/],
      ['schedules:\n  - periods: ["* * * * *"]\n    scaleFactor: -1', /^executors\[0\]\.pool\.schedules\[0\]\.scaleFactor: expected a number from 0 to 100, got -1$/],
      ['schedules:\n  - periods: "* * * * *"', /^executors\[0\]\.pool\.schedules\[0\]\.periods: .*array/],
    ])('%j', (block, message) => {
      expect(errorOf(withPool(block))).toMatch(message);
    });
  });

  it('accepts IANA zones, including DST zones and links', () => {
    for (const tz of ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'US/Eastern']) {
      expect(poolOf(`schedules:\n  - periods: ["* * * * *"]\n    timezone: ${tz}`).schedules[0]!.timezone).toBe(tz);
    }
  });

  it('checks the pool of the executor it belongs to (path and maxMachines of executors[1])', () => {
    const two = `${base}  - name: big\n    provider: local\n    maxMachines: 20\n    pool:\n      idleCount: 21\n`;
    expect(errorOf(two)).toBe('executors[1].pool.idleCount: 21 is more than maxMachines (20)');
    expect(parseConfigText(two.replace('idleCount: 21', 'idleCount: 20')).executors[1]!.pool.idleCount).toBe(20);
  });
});
