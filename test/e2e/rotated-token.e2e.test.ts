// A runner token GitLab rotated survives the coordinator's task, through the BUILT CLI: the first
// coordinator rotates its glrt- token (the fake GitLab issues it with a short lifetime) and saves the new one
// in SSM Parameter Store (the fake served over HTTP, reached through AWS_ENDPOINT_URL_SSM); a replacement
// started with an empty stateDir and HOME, and only the configured token, which GitLab no longer accepts,
// starts with the saved one and takes jobs. Without the parameter the replacement is refused (exit 2).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import { FakeSsm } from '../helpers/fake-ssm.js';
import { contractConfig, createSimplePipeline, waitFinished } from './harness.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');
const PARAM = '/fleetrunner/e2e/runner-token';
const LIFETIME_MS = 24_000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const until = async (what: string, cond: () => boolean, timeoutMs = 30_000) => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('e2e: a rotated runner token outlives the task', () => {
  it('the replacement task reads it from SSM and runs jobs; without it the replacement is refused', async () => {
    const fake = new FakeGitLab();
    await fake.start();
    cleanups.push(() => fake.stop());
    const { token } = fake.addRunner({ tokenExpiresAt: Date.now() + LIFETIME_MS });
    const ssm = new FakeSsm();
    const endpoint = await ssm.listen();
    cleanups.push(() => ssm.close());
    const dir = mkdtempSync(join(tmpdir(), 'fr-e2e-rotated-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    const start = (name: string, withParameter: boolean) => {
      const task = join(dir, name); // a fresh task: its own empty stateDir and HOME
      mkdirSync(join(task, 'home'), { recursive: true });
      const configPath = join(task, 'fleetrunner.yaml');
      const gitlabExtra = withParameter ? ['  rotatedToken:', `    ssmParameter: ${PARAM}`] : [];
      writeFileSync(configPath, contractConfig(fake.url, 2, [`stateDir: ${join(task, 'state')}`], false, undefined, gitlabExtra));
      const child = spawn(process.execPath, [BIN, 'run', '--config', configPath], {
        env: {
          ...process.env,
          HOME: join(task, 'home'),
          FR_E2E_TOKEN: token,
          AWS_ENDPOINT_URL_SSM: endpoint,
          AWS_REGION: 'eu-west-1',
          AWS_ACCESS_KEY_ID: 'fake-access-key',
          AWS_SECRET_ACCESS_KEY: 'fake',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exit;
        }
      });
      return { child, exit, log: () => out };
    };

    const first = start('first', true);
    await until('the token to be rotated and saved', () => ssm.parameters.has(PARAM) && first.log().includes('saved the rotated runner token'), 40_000);
    expect(ssm.parameters.get(PARAM)!.type).toBe('SecureString');
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    expect(first.log()).not.toContain(token);

    // Only the configured token, which GitLab replaced: refused at start.
    const blind = start('blind', false);
    expect(await blind.exit).toBe(2);
    expect(blind.log()).toContain('cannot start');
    const violationsBefore = fake.violations.length;

    const second = start('second', true);
    await until('the replacement to start', () => second.log().includes('coordinator started'));
    const p = await createSimplePipeline(fake, [{ name: 'after-rotation', script: ['echo ran with the saved token'] }]);
    const job = await waitFinished(fake, p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(job.traceText).toContain('ran with the saved token');
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
    // The replacement never used the retired token (the fake records that as a violation).
    expect(fake.violations.slice(violationsBefore)).toEqual([]);
  }, 90_000);
});
