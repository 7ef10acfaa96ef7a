// `lease:` in the config: one store, the timing defaults, every range bound just inside and just outside,
// and the cross-checks against lease.duration. The numbers are written out, not read from limits.ts.
import { describe, expect, it } from 'vitest';

import { compileConfig } from '../../../src/config/index.js';
import { planReload } from '../../../src/cli/reload.js';
import { ConfigError } from '../../../src/core/errors.js';

const TOKEN = `glrt-${'x'.repeat(20)}`;

function config(lease?: Record<string, unknown>): Record<string, unknown> {
  return {
    gitlab: { url: 'https://gitlab.example.com', token: TOKEN },
    concurrent: 2,
    ...(lease !== undefined && { lease }),
    executors: [{ name: 'local', provider: 'local', maxMachines: 2 }],
  };
}

function errorOf(lease: Record<string, unknown>): ConfigError {
  try {
    compileConfig(config(lease));
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(lease)} to be rejected`);
}

const ddb = { dynamodb: { table: 'fleetrunner-lease' } };

describe('config: lease', () => {
  it('is absent by default: the contract config has no lease', () => {
    expect(compileConfig(config()).lease).toBeUndefined();
  });

  it('dynamodb with the default timing (30s, renewed every 10s, 5s of clock skew)', () => {
    expect(compileConfig(config({ dynamodb: { table: 'fleetrunner-lease', region: 'eu-west-1' } })).lease).toEqual({
      dynamodb: { table: 'fleetrunner-lease', region: 'eu-west-1' },
      durationMs: 30_000,
      renewIntervalMs: 10_000,
      maxClockSkewMs: 5_000,
    });
    const arn = 'arn:aws:dynamodb:eu-west-1:123456789012:table/fleetrunner-lease';
    expect(compileConfig(config({ dynamodb: { table: arn } })).lease!.dynamodb!.table).toBe(arn);
  });

  it('file, with or without a path', () => {
    expect(compileConfig(config({ file: {} })).lease).toMatchObject({ file: {}, durationMs: 30_000 });
    expect(compileConfig(config({ file: { path: '/var/lib/fleetrunner/lease' }, duration: '6s', renewInterval: '2s', maxClockSkew: '0s' })).lease).toEqual({
      file: { path: '/var/lib/fleetrunner/lease' },
      durationMs: 6_000,
      renewIntervalMs: 2_000,
      maxClockSkewMs: 0,
    });
  });

  it('needs exactly one store', () => {
    expect(errorOf({}).message).toMatch(/^lease: set exactly one of lease\.dynamodb .* and lease\.file/);
    expect(errorOf({ ...ddb, file: {} }).path).toBe('lease');
    expect(errorOf({ dynamodb: { table: 'x' } }).message).toMatch(/^lease\.dynamodb\.table: expected a DynamoDB table name/);
    expect(errorOf({ dynamodb: {} }).path).toBe('lease.dynamodb.table');
    expect(errorOf({ ...ddb, leases: 1 }).message).toBe('lease: unknown key "leases"');
  });

  const bounds: Array<{ key: string; inside: string[]; outside: string[]; says: string; with?: Record<string, string> }> = [
    { key: 'duration', inside: ['3s', '15m'], outside: ['2999ms', '15m1ms'], says: 'expected a duration from 3s to 15m', with: { renewInterval: '1s', maxClockSkew: '0s' } },
    { key: 'renewInterval', inside: ['1s', '5m'], outside: ['999ms', '5m1ms'], says: 'expected a duration from 1s to 5m', with: { duration: '15m' } },
    { key: 'maxClockSkew', inside: ['0s', '5m'], outside: ['5m1ms'], says: 'expected a duration from 0s to 5m', with: { duration: '15m' } },
  ];
  for (const b of bounds) {
    for (const v of b.inside) {
      it(`accepts lease.${b.key}: ${v}`, () => expect(() => compileConfig(config({ ...ddb, ...b.with, [b.key]: v }))).not.toThrow());
    }
    for (const v of b.outside) {
      it(`refuses lease.${b.key}: ${v}`, () => expect(errorOf({ ...ddb, ...b.with, [b.key]: v }).message).toMatch(new RegExp(`^lease\\.${b.key}: ${b.says}, got "${v}"`)));
    }
    it(`lease.${b.key}: a bare number asks for a unit`, () => expect(errorOf({ ...ddb, [b.key]: 30 }).message).toBe(`lease.${b.key}: 30 has no unit: write 30s for seconds (units: ms, s, m, h, d)`));
  }

  it('renewInterval and maxClockSkew are at most a third of duration', () => {
    expect(() => compileConfig(config({ ...ddb, duration: '30s', renewInterval: '10s', maxClockSkew: '10s' }))).not.toThrow();
    expect(errorOf({ ...ddb, duration: '30s', renewInterval: '11s' }).message).toBe(
      'lease.renewInterval: expected at most a third of lease.duration (10s), got "11s": two renewals must be able to fail before the lease runs out',
    );
    expect(errorOf({ ...ddb, duration: '30s', maxClockSkew: '10001ms' }).message).toBe('lease.maxClockSkew: expected at most a third of lease.duration (10s), got "10001ms"');
    expect(errorOf({ ...ddb, duration: '6s' }).path).toBe('lease.renewInterval'); // the 10s default is too long for 6s
  });

  it('a changed lease needs a restart (SIGHUP does not apply it)', () => {
    const plan = planReload(compileConfig(config(ddb)), compileConfig(config({ ...ddb, duration: '60s' })));
    expect(plan.needsRestart).toEqual(['lease']);
  });
});
