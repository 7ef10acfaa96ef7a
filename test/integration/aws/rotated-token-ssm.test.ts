// The rotated runner token in SSM Parameter Store (gitlab.rotatedToken.ssmParameter), against the stateful
// fake at the SDK boundary; and in a mode-600 file where no parameter is configured.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RotatedToken } from '../../../src/cli/rotated-token.js';
import { ConfigError } from '../../../src/core/errors.js';
import type { Logger } from '../../../src/core/logger.js';
import { silentLogger } from '../../../src/core/logger.js';
import { SsmSecretStore } from '../../../src/providers/aws/ssm-secret-store.js';
import { FileSecretStore } from '../../../src/providers/file-secret-store.js';
import { FakeSsm } from '../../helpers/fake-ssm.js';
import { settle, StepClock } from '../../helpers/step-clock.js';
import { testToken } from '../../helpers/tokens.js';

const PARAM = '/fleetrunner/test/runner-token';
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function setup(o: { kmsKeyId?: string } = {}) {
  const clock = new StepClock();
  const ssm = new FakeSsm(() => clock.now());
  const store = new SsmSecretStore({ client: ssm.client, name: PARAM, ...(o.kmsKeyId && { kmsKeyId: o.kmsKeyId }) });
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const logger: Logger = {
    ...silentLogger,
    info: (fields, msg) => void lines.push({ level: 'info', msg, fields }),
    warn: (fields, msg) => void lines.push({ level: 'warn', msg, fields }),
    error: (fields, msg) => void lines.push({ level: 'error', msg, fields }),
    child: () => logger,
  };
  const configuredToken = testToken('glrt-');
  const rotated = new RotatedToken({ store, configuredToken, clock, logger });
  return { clock, ssm, store, rotated, lines, configuredToken };
}

const state = (token: string, obtainedAt = 1_000) => ({ token, obtainedAt, expiresAt: obtainedAt + 3_600_000 });

describe('rotated runner token in SSM Parameter Store', () => {
  it('nothing saved yet reads as none; a saved token comes back for the same configured token only', async () => {
    const s = setup();
    expect(await s.rotated.load()).toBeUndefined();
    const next = testToken('glrt-');
    await s.rotated.save(state(next));
    const p = s.ssm.parameters.get(PARAM)!;
    expect(p.type).toBe('SecureString');
    expect(await s.rotated.load()).toEqual(state(next));
    // Another configured token (a new deployment) ignores it.
    const other = new RotatedToken({ store: s.store, configuredToken: testToken('glrt-'), clock: s.clock, logger: silentLogger });
    expect(await other.load()).toBeUndefined();
    // The value is the token's state, never logged.
    expect(JSON.stringify(s.lines)).not.toContain(next);
  });

  it('overwrites the parameter on every rotation (new version) and uses the configured KMS key', async () => {
    const s = setup({ kmsKeyId: 'alias/fleetrunner' });
    await s.rotated.save(state(testToken('glrt-'), 1));
    const second = testToken('glrt-');
    await s.rotated.save(state(second, 2));
    const p = s.ssm.parameters.get(PARAM)!;
    expect(p.version).toBe(2);
    expect(p.keyId).toBe('alias/fleetrunner');
    expect((await s.rotated.load())?.token).toBe(second);
  });

  it('a save that fails is retried with backoff until it works, a line per failure', async () => {
    const s = setup();
    s.ssm.failNext('PutParameter', 3);
    const token = testToken('glrt-');
    let done = false;
    void s.rotated.save(state(token)).then(() => (done = true));
    await settle();
    expect(done).toBe(false);
    for (let i = 0; i < 10 && !done; i++) {
      await s.clock.advance(60_000);
      await settle();
    }
    expect(done).toBe(true);
    expect(s.ssm.calls.PutParameter).toBe(4);
    expect(s.lines.filter((l) => l.level === 'error')).toHaveLength(3);
    expect((await s.rotated.load())?.token).toBe(token);
  });

  it('a newer rotation replaces one still waiting to be saved: the newest token is what stays', async () => {
    const s = setup();
    s.ssm.failNext('PutParameter', 1);
    const first = testToken('glrt-');
    const second = testToken('glrt-');
    const p1 = s.rotated.save(state(first, 1));
    await settle();
    const p2 = s.rotated.save(state(second, 2));
    for (let i = 0; i < 5; i++) {
      await s.clock.advance(10_000);
      await settle();
    }
    await Promise.all([p1, p2]);
    expect((await s.rotated.load())?.token).toBe(second);
  });

  it('a task role without ssm:GetParameter (or its KMS key) stops the start with the parameter named', async () => {
    const s = setup();
    s.ssm.deny('GetParameter');
    const err = await s.rotated.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(`ssm:${PARAM}`);
    expect((err as Error).message).toContain('ssm:GetParameter');
  });

  it('an unreachable store is retried at start, a line per attempt, until it answers', async () => {
    const s = setup();
    s.ssm.failNext('GetParameter', 2);
    let got: unknown = 'pending';
    void s.rotated.load().then((v) => (got = v));
    for (let i = 0; i < 10 && got === 'pending'; i++) {
      await s.clock.advance(30_000);
      await settle();
    }
    expect(got).toBeUndefined();
    expect(s.lines.filter((l) => l.msg.includes('could not read the saved runner token'))).toHaveLength(2);
  });

  it('the fake holds Parameter Store to its rules: SecureString needs decryption, Standard values ≤ 4 KB', async () => {
    const s = setup();
    await s.store.put('x');
    const { GetParameterCommand } = await import('@aws-sdk/client-ssm');
    const raw = await s.ssm.client.send(new GetParameterCommand({ Name: PARAM }));
    expect(raw.Parameter?.Value).not.toBe('x');
    await expect(s.store.put('y'.repeat(4097))).rejects.toThrow(/4096/);
  });
});

describe('rotated runner token in a file (no parameter configured)', () => {
  it('is written mode 600 and read back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fr-rotated-'));
    dirs.push(dir);
    const path = join(dir, 'state', 'runner-token.json');
    const configuredToken = testToken('glrt-');
    const rotated = new RotatedToken({ store: new FileSecretStore(path), configuredToken, clock: new StepClock(), logger: silentLogger });
    expect(await rotated.load()).toBeUndefined();
    const token = testToken('glrt-');
    await rotated.save(state(token));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await rotated.load())?.token).toBe(token);
    await rotated.clear();
    expect(await rotated.load()).toBeUndefined();
  });
});
