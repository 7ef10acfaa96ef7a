// Every duration, size and count in the config has a documented range (README, "Configuration
// reference"; src/config/limits.ts). Each bound is tried just inside and just outside, and the error must
// start with the exact key path, as `fleetrunner validate` prints it. The numbers are written out here on
// purpose, not read from limits.ts: a range is a promise to users, and changing one must change this test.
import { describe, expect, it, vi } from 'vitest';

import { compileConfig, parseConfigText } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/core/errors.js';

const TOKEN = `glrt-${'x'.repeat(20)}`;

/** An ec2 + docker executor with a cache, a pool and a schedule: every key below applies to it. */
function base(): Record<string, unknown> {
  return {
    gitlab: { url: 'https://gitlab.example.com', token: TOKEN, runner: { maximumTimeout: '1h' } },
    concurrent: 4,
    metrics: { listen: '127.0.0.1:9090' },
    executors: [
      {
        name: 'dind',
        provider: 'ec2',
        style: 'docker',
        maxMachines: 10,
        docker: {},
        cache: { s3: { bucket: 'my-ci-cache' } },
        ec2: { subnets: ['subnet-0aaa1111'], instanceTypes: ['c6i.xlarge'], rootVolume: {} },
        pool: { schedules: [{ periods: ['* 8-18 * * mon-fri'] }] },
      },
    ],
  };
}

/** Sets `path` ("executors[0].pool.idleTime") in a fresh base config. */
function configWith(settings: Record<string, unknown>): Record<string, unknown> {
  const doc = base();
  for (const [path, value] of Object.entries(settings)) {
    const keys = path.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
    let at = doc as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = value;
  }
  return doc;
}

function errorOf(settings: Record<string, unknown>): ConfigError {
  try {
    compileConfig(configWith(settings));
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(settings)} to be rejected`);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Bound {
  path: string;
  inside: unknown[];
  outside: unknown[];
  /** Part of every outside value's message (the range as the user reads it). */
  says: string;
  /** Other keys set for this row (a volume type, say). */
  with?: Record<string, unknown>;
}

const E = 'executors[0]';
const bounds: Bound[] = [
  // top level
  { path: 'concurrent', inside: [1, 10_000], outside: [0, 10_001, 100_000_000, 1.5, -1], says: 'expected a whole number from 1 to 10000' },
  { path: 'executors[0].ec2.launchBatch', inside: [1, 100], outside: [0, 101, 1.5], says: 'expected a whole number from 1 to 100' },
  { path: 'requestConcurrency', inside: [1, 100], outside: [0, 101, 2.5], says: 'expected a whole number from 1 to 100', with: { concurrent: 1000 } },
  { path: 'requestConcurrency', inside: [4], outside: [5], says: 'expected at most concurrent (4)' },
  { path: 'checkInterval', inside: ['1s', '1000ms', '1h'], outside: ['999ms', '0s', '1h1ms'], says: 'expected a duration from 1s to 1h' },
  { path: 'shutdownTimeout', inside: ['1s', '24h'], outside: ['999ms', '0s', '24h1ms', '30d'], says: 'expected a duration from 1s to 24h' },
  { path: 'outputLimit', inside: ['1KiB', '1024B', '1GiB'], outside: ['1023B', '1073741825B', '1025MiB', '2GB'], says: 'expected a size from 1KiB to 1GiB' },
  { path: 'gitlab.runner.maximumTimeout', inside: ['10m', '30d'], outside: ['9m59s', '30d1s'], says: 'expected a duration from 10m to 30d' },
  // executor
  { path: `${E}.maxMachines`, inside: [10, 10_000], outside: [0, 10_001, 2.5], says: 'expected a whole number from 1 to 10000' },
  { path: `${E}.bootTimeout`, inside: ['10s', '1h'], outside: ['9999ms', '0s', '1h1s'], says: 'expected a duration from 10s to 1h' },
  { path: `${E}.afterScriptTimeout`, inside: ['1s', '24h'], outside: ['999ms', '24h1s'], says: 'expected a duration from 1s to 24h' },
  { path: `${E}.docker.waitForServicesTimeout`, inside: ['0s', '1h'], outside: ['1h1ms'], says: 'expected a duration from 0s to 1h' },
  { path: `${E}.docker.cpus`, inside: [0.01, 1024, '1.5'], outside: [0, 0.009, 1025, 'two', '-1'], says: 'expected a number of CPUs from 0.01 to 1024' },
  { path: `${E}.cache.s3.urlExpiry`, inside: ['5m', '7d'], outside: ['4m59s', '7d1s'], says: 'expected a duration from 5m to 7d' },
  { path: `${E}.ec2.capacityCooldown`, inside: ['0s', '24h'], outside: ['24h1s'], says: 'expected a duration from 0s to 24h' },
  { path: `${E}.ec2.watchdog.idleTimeout`, inside: ['5m', '24h'], outside: ['4m59s', '24h1s'], says: 'expected a duration from 5m to 24h' },
  { path: `${E}.ec2.watchdog.maxLifetime`, inside: ['1h', '30d'], outside: ['59m', '30d1s'], says: 'expected a duration from 1h to 30d' },
  { path: `${E}.ec2.spotCircuitBreaker.interruptions`, inside: [1, 100], outside: [0, 101, 1.5], says: 'expected a whole number from 1 to 100' },
  { path: `${E}.ec2.spotCircuitBreaker.window`, inside: ['1m', '24h'], outside: ['59s', '24h1s'], says: 'expected a duration from 1m to 24h' },
  { path: `${E}.ec2.spotCircuitBreaker.onDemandFor`, inside: ['1m', '7d'], outside: ['59s', '7d1s'], says: 'expected a duration from 1m to 7d' },
  // EBS root volume, by type
  { path: `${E}.ec2.rootVolume.sizeGb`, inside: [8, 65_536], outside: [7, 65_537], says: 'expected 8 to 65536 GiB for volume type gp3' },
  { path: `${E}.ec2.rootVolume.sizeGb`, with: { [`${E}.ec2.rootVolume.type`]: 'gp2' }, inside: [8, 16_384], outside: [7, 16_385], says: 'expected 8 to 16384 GiB for volume type gp2' },
  { path: `${E}.ec2.rootVolume.sizeGb`, with: { [`${E}.ec2.rootVolume.type`]: 'io1', [`${E}.ec2.rootVolume.iops`]: 3000 }, inside: [8, 16_384], outside: [16_385], says: 'expected 8 to 16384 GiB for volume type io1' },
  { path: `${E}.ec2.rootVolume.sizeGb`, with: { [`${E}.ec2.rootVolume.type`]: 'io2', [`${E}.ec2.rootVolume.iops`]: 3000 }, inside: [8, 65_536], outside: [65_537], says: 'expected 8 to 65536 GiB for volume type io2' },
  { path: `${E}.ec2.rootVolume.iops`, inside: [3_000, 80_000], outside: [2_999, 80_001], says: 'expected 3000 to 80000 IOPS for volume type gp3' },
  { path: `${E}.ec2.rootVolume.iops`, with: { [`${E}.ec2.rootVolume.type`]: 'io1' }, inside: [100, 64_000], outside: [99, 64_001, undefined], says: 'volume type io1' },
  { path: `${E}.ec2.rootVolume.iops`, with: { [`${E}.ec2.rootVolume.type`]: 'io2' }, inside: [100, 256_000], outside: [99, 256_001, undefined], says: 'volume type io2' },
  { path: `${E}.ec2.rootVolume.iops`, with: { [`${E}.ec2.rootVolume.type`]: 'gp2' }, inside: [undefined], outside: [3000], says: 'applies only to volume types gp3, io1 and io2' },
  { path: `${E}.ec2.rootVolume.throughput`, inside: [125, 2_000], outside: [124, 2_001], says: 'expected 125 to 2000 MiB/s for volume type gp3' },
  { path: `${E}.ec2.rootVolume.throughput`, with: { [`${E}.ec2.rootVolume.type`]: 'io2', [`${E}.ec2.rootVolume.iops`]: 3000 }, inside: [undefined], outside: [125], says: 'applies only to volume type gp3' },
  // idle pool (maxMachines is 10 here)
  { path: `${E}.pool.idleCount`, inside: [0, 10], outside: [-1, 1.5], says: 'expected a whole number from 0 to 10000' },
  { path: `${E}.pool.idleCount`, inside: [], outside: [11], says: '11 is more than maxMachines (10)' },
  { path: `${E}.pool.idleTime`, inside: ['0s', '24h'], outside: ['24h1s'], says: 'expected a duration from 0s to 24h' },
  { path: `${E}.pool.maxUseCount`, inside: [1, 100_000], outside: [0, 100_001], says: 'expected a whole number from 1 to 100000' },
  { path: `${E}.pool.maxGrowthRate`, inside: [1, 10_000], outside: [0, 10_001], says: 'expected a whole number from 1 to 10000' },
  { path: `${E}.pool.scaleFactor`, inside: [0, 0.5, 100], outside: [-0.1, 100.5], says: 'expected a number from 0 to 100' },
  { path: `${E}.pool.scaleFactorLimit`, inside: [0, 10], outside: [-1], says: 'expected a whole number from 0 to 10000' },
  { path: `${E}.pool.scaleFactorLimit`, inside: [], outside: [11], says: '11 is more than maxMachines (10)' },
  { path: `${E}.pool.schedules[0].idleCount`, inside: [0, 10], outside: [-1], says: 'expected a whole number from 0 to 10000' },
  { path: `${E}.pool.schedules[0].idleCount`, inside: [], outside: [11], says: 'is more than maxMachines (10)' },
  { path: `${E}.pool.schedules[0].idleTime`, inside: ['0s', '24h'], outside: ['24h1s'], says: 'expected a duration from 0s to 24h' },
  { path: `${E}.pool.schedules[0].scaleFactor`, inside: [0, 100], outside: [-1, 101], says: 'expected a number from 0 to 100' },
  { path: `${E}.pool.schedules[0].scaleFactorLimit`, inside: [0, 10], outside: [-1], says: 'expected a whole number from 0 to 10000' },
  { path: `${E}.pool.schedules[0].scaleFactorLimit`, inside: [], outside: [11], says: 'is more than maxMachines (10)' },
];

describe('config ranges: every bound, just inside and just outside', () => {
  it('the base config is valid', () => {
    expect(() => compileConfig(base())).not.toThrow();
  });

  for (const b of bounds) {
    const context = b.with ? ` (with ${Object.entries(b.with).map(([k, v]) => `${k.split('.').at(-1)}: ${String(v)}`).join(', ')})` : '';
    for (const v of b.inside) {
      it(`accepts ${b.path}: ${JSON.stringify(v)}${context}`, () => {
        expect(() => compileConfig(configWith({ ...b.with, [b.path]: v }))).not.toThrow();
      });
    }
    for (const v of b.outside) {
      it(`refuses ${b.path}: ${JSON.stringify(v)}${context}, naming the key path`, () => {
        const e = errorOf({ ...b.with, [b.path]: v });
        expect(e.path).toBe(b.path);
        expect(e.message).toMatch(new RegExp(`^${esc(b.path)}: .*${esc(b.says)}`));
      });
    }
  }

  it('defaults requestConcurrency to 1 (one job request at a time, as gitlab-runner)', () => {
    expect(compileConfig(base()).requestConcurrency).toBe(1);
  });

  it('says what a value is, and why where the bound is not obvious', () => {
    expect(errorOf({ checkInterval: '0s' }).message).toBe(
      'checkInterval: expected a duration from 1s to 1h, got "0s" (GitLab is asked for jobs at most once per checkInterval)',
    );
    expect(errorOf({ shutdownTimeout: '30d' }).message).toBe(
      'shutdownTimeout: expected a duration from 1s to 24h, got "30d" (how long running jobs may take to finish after SIGTERM; 0 is not "no limit")',
    );
    expect(errorOf({ concurrent: 100_000_000 }).message).toBe('concurrent: expected a whole number from 1 to 10000, got 100000000');
    expect(errorOf({ [`${E}.ec2.rootVolume.type`]: 'io1' }).message).toBe(`${E}.ec2.rootVolume.iops: is required for volume type io1 (100 to 64000)`);
  });

  it('compiles values at the bounds exactly', () => {
    const c = compileConfig(
      configWith({ checkInterval: '1s', shutdownTimeout: '24h', outputLimit: '1GiB', [`${E}.cache.s3.urlExpiry`]: '7d', [`${E}.pool.idleTime`]: '0s', 'gitlab.runner.maximumTimeout': '30d' }),
    );
    expect(c.checkIntervalMs).toBe(1000);
    expect(c.shutdownTimeoutMs).toBe(86_400_000);
    expect(c.outputLimitBytes).toBe(1024 ** 3);
    expect(c.executors[0]!.cache!.s3!.urlExpiryMs).toBe(7 * 86_400_000);
    expect(c.executors[0]!.pool.idleTimeMs).toBe(0);
    expect(c.gitlab.runner.maximumTimeoutS).toBe(30 * 86_400);
  });

  it('keeps a missing required count a "required" error', () => {
    const doc = base();
    delete doc.concurrent;
    expect(() => compileConfig(doc)).toThrow(/^concurrent: is required \(expected number\)$/);
  });

  it('no duration can reach past one Node timer (2^31-1 ms)', () => {
    const c = compileConfig(configWith({ shutdownTimeout: '24h', [`${E}.afterScriptTimeout`]: '24h', [`${E}.ec2.capacityCooldown`]: '24h' }));
    for (const ms of [c.checkIntervalMs, c.shutdownTimeoutMs, c.executors[0]!.afterScriptTimeoutMs, c.executors[0]!.bootTimeoutMs]) expect(ms).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  describe('ec2.tags', () => {
    const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    it('takes up to 46 tags (EC2 allows 50; fleetrunner adds 4)', () => {
      expect(() => compileConfig(configWith({ [`${E}.ec2.tags`]: tags(46) }))).not.toThrow();
      expect(errorOf({ [`${E}.ec2.tags`]: tags(47) }).message).toMatch(/^executors\[0\]\.ec2\.tags: expected at most 46 tags, got 47/);
    });
    it('refuses keys and values EC2 refuses', () => {
      expect(errorOf({ [`${E}.ec2.tags`]: { 'aws:team': 'ci' } }).message).toMatch(/^executors\[0\]\.ec2\.tags\.aws:team: tag keys starting with aws: are reserved/);
      expect(errorOf({ [`${E}.ec2.tags`]: { ['k'.repeat(129)]: 'v' } }).message).toMatch(/: expected a tag key of 1 to 128 characters$/);
      expect(() => compileConfig(configWith({ [`${E}.ec2.tags`]: { ['k'.repeat(128)]: 'v'.repeat(256) } }))).not.toThrow();
      expect(errorOf({ [`${E}.ec2.tags`]: { team: 'v'.repeat(257) } }).message).toMatch(/^executors\[0\]\.ec2\.tags\.team: expected a tag value of at most 256 characters/);
    });
  });
});

describe('bare numbers are not durations or sizes', () => {
  const durationKeys = [
    'checkInterval', 'shutdownTimeout', 'gitlab.runner.maximumTimeout', `${E}.bootTimeout`, `${E}.afterScriptTimeout`,
    `${E}.docker.waitForServicesTimeout`, `${E}.cache.s3.urlExpiry`, `${E}.ec2.capacityCooldown`, `${E}.pool.idleTime`, `${E}.pool.schedules[0].idleTime`,
    `${E}.ec2.watchdog.idleTimeout`, `${E}.ec2.watchdog.maxLifetime`, `${E}.ec2.spotCircuitBreaker.window`, `${E}.ec2.spotCircuitBreaker.onDemandFor`,
  ];
  for (const path of durationKeys) {
    it(`${path}: 30 asks for 30s`, () => {
      expect(errorOf({ [path]: 30 }).message).toBe(`${path}: 30 has no unit: write 30s for seconds (units: ms, s, m, h, d)`);
    });
  }

  it('a number in a string (as ${VAR} gives it) is bare too, and so is 0', () => {
    expect(errorOf({ checkInterval: '30' }).message).toBe('checkInterval: "30" has no unit: write 30s for seconds (units: ms, s, m, h, d)');
    expect(errorOf({ [`${E}.pool.idleTime`]: 0 }).message).toMatch(/^executors\[0\]\.pool\.idleTime: 0 has no unit: write 0s/);
    const text = `gitlab: { url: https://gitlab.example.com, token: ${TOKEN} }\nconcurrent: 1\ncheckInterval: \${INTERVAL}\nexecutors: [{ name: a, provider: local, maxMachines: 1 }]\n`;
    expect(() => parseConfigText(text, { INTERVAL: '5' })).toThrow(/^checkInterval: "5" has no unit: write 5s/);
    expect(parseConfigText(text, { INTERVAL: '5s' }).checkIntervalMs).toBe(5000);
  });

  it('outputLimit: 4096 asks for a unit (gitlab-runner reads it as KB, a bare number would be bytes)', () => {
    expect(errorOf({ outputLimit: 4096 }).message).toBe('outputLimit: 4096 has no unit: write 4096B for bytes or 4096KiB for kibibytes (units: B, KiB, MiB, GiB, KB, MB, GB)');
  });

  it('still names a malformed duration as before, negative numbers included', () => {
    expect(errorOf({ checkInterval: '3 s' }).message).toBe('checkInterval: expected a duration such as 30s, 5m or 1h30m, got "3 s"');
    expect(errorOf({ checkInterval: -5 }).message).toBe('checkInterval: expected a duration such as 30s, 5m or 1h30m, got -5');
    expect(errorOf({ outputLimit: -1 }).message).toBe('outputLimit: expected a size such as 4MiB or 512KiB, got -1');
  });
});

describe('metrics.listen is host:port', () => {
  const listenOf = (v: string) => compileConfig(configWith({ 'metrics.listen': v })).metrics;
  it.each([
    ['127.0.0.1:9090', { listen: '127.0.0.1:9090', host: '127.0.0.1', port: 9090 }],
    ['0.0.0.0:1', { listen: '0.0.0.0:1', host: '0.0.0.0', port: 1 }],
    [':65535', { listen: ':65535', port: 65535 }],
    ['localhost:9090', { listen: 'localhost:9090', host: 'localhost', port: 9090 }],
    ['metrics.ci-runner.internal:9090', { listen: 'metrics.ci-runner.internal:9090', host: 'metrics.ci-runner.internal', port: 9090 }],
    // The metrics server splits at the last colon, so the IPv6 host reaches it without brackets.
    ['[::1]:9090', { listen: '::1:9090', host: '::1', port: 9090 }],
    ['[::]:9090', { listen: ':::9090', host: '::', port: 9090 }],
    ['[fd00::10:2]:9100', { listen: 'fd00::10:2:9100', host: 'fd00::10:2', port: 9100 }],
  ])('accepts %s', (v, expected) => expect(listenOf(v)).toEqual(expected));

  it.each([
    ['foo', /^metrics\.listen: expected host:port such as .*, got "foo" \(no port\)$/],
    ['localhost', /\(no port\)$/],
    ['127.0.0.1:99999', /^metrics\.listen: expected a port from 1 to 65535 after the last colon, got "99999" in "127\.0\.0\.1:99999"$/],
    ['127.0.0.1:65536', /expected a port from 1 to 65535/],
    [':0', /expected a port from 1 to 65535/],
    ['127.0.0.1:', /expected a port from 1 to 65535/],
    ['127.0.0.1:90a', /expected a port from 1 to 65535/],
    ['127.0.0.1:-1', /expected a port from 1 to 65535/],
    ['256.0.0.1:9090', /"256\.0\.0\.1" is not an IPv4 address$/],
    ['1.2.3:9090', /"1\.2\.3" is not an IPv4 address$/],
    ['::1:9090', /^metrics\.listen: an IPv6 address needs brackets, e.g\. \[::1\]:9090/],
    ['[::1]', /a bracketed IPv6 address needs \]:port after it/],
    ['[::1]9090', /a bracketed IPv6 address needs \]:port after it/],
    ['[127.0.0.1]:9090', /"127\.0\.0\.1" is not an IPv6 address$/],
    ['[zz::1]:9090', /"zz::1" is not an IPv6 address$/],
    ['under_score:9090', /is not an IPv4 address, a bracketed IPv6 address or a hostname$/],
    ['-lead.example:9090', /or a hostname$/],
    ['two..dots:9090', /or a hostname$/],
    [' 127.0.0.1:9090', /or a hostname$/],
    ['http://127.0.0.1:9090', /without a scheme or path, got "http:\/\/127\.0\.0\.1:9090"$/],
  ])('refuses %j', (v, message) => {
    const e = errorOf({ 'metrics.listen': v });
    expect(e.path).toBe('metrics.listen');
    expect(e.message).toMatch(message);
  });

  it('is off when absent', () => {
    const doc = base();
    delete doc.metrics;
    expect(compileConfig(doc).metrics).toEqual({});
  });
});

describe('the issue\'s configs fail validation, naming the key', () => {
  const contract = `gitlab:
  url: https://gitlab.example.com
  token: ${TOKEN}
concurrent: 4
executors:
  - name: local
    provider: local
    style: shell
    maxMachines: 4
`;
  it.each([
    ['checkInterval: 0\n', /^checkInterval: 0 has no unit: write 0s/],
    ['checkInterval: 0s\n', /^checkInterval: expected a duration from 1s to 1h, got "0s"/],
    ['shutdownTimeout: 30d\n', /^shutdownTimeout: expected a duration from 1s to 24h, got "30d"/],
    ['metrics:\n  listen: foo\n', /^metrics\.listen: expected host:port/],
    ['metrics:\n  listen: 127.0.0.1:99999\n', /^metrics\.listen: expected a port from 1 to 65535/],
  ])('%j', (extra, message) => {
    expect(() => parseConfigText(contract + extra)).toThrow(message);
  });
  it('bootTimeout: 0s and concurrent: 100000000', () => {
    expect(() => parseConfigText(`${contract}    bootTimeout: 0s\n`)).toThrow(/^executors\[0\]\.bootTimeout: expected a duration from 10s to 1h, got "0s"/);
    expect(() => parseConfigText(contract.replace('concurrent: 4', 'concurrent: 100000000'))).toThrow(/^concurrent: expected a whole number from 1 to 10000, got 100000000$/);
  });
  it('the contract config itself is unchanged and valid', () => {
    expect(parseConfigText(contract).checkIntervalMs).toBe(3000);
  });
});

describe('fleetrunner validate and run exit 2 on a value out of range, before anything starts', () => {
  it.each([['validate'], ['run']])('%s', async (command) => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { main } = await import('../../../src/cli/main.js');
    const dir = mkdtempSync(join(tmpdir(), 'fr-limits-'));
    const file = join(dir, 'fleetrunner.yaml');
    writeFileSync(file, `gitlab: { url: https://gitlab.example.com, token: ${TOKEN} }\nconcurrent: 4\nmetrics: { listen: "127.0.0.1:99999" }\nexecutors: [{ name: a, provider: local, maxMachines: 4 }]\n`);
    const stderr: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string) => (stderr.push(String(chunk)), true)) as typeof process.stderr.write);
    try {
      expect(await main([command, '--config', file])).toBe(2);
    } finally {
      spy.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(stderr.join('')).toMatch(/invalid config .*: metrics\.listen: expected a port from 1 to 65535/);
  });
});
