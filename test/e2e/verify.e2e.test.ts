// `fleetrunner verify` through the BUILT CLI (`node bin/fleetrunner.js verify --config F`, build first:
// `npm run build`), with a local-only config against the strict fake GitLab.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import { contractConfig } from './harness.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');
const dir = mkdtempSync(join(tmpdir(), 'fr-verify-e2e-'));
let fake: FakeGitLab;

beforeAll(async () => {
  fake = new FakeGitLab();
  await fake.start();
});

afterAll(async () => {
  await fake.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Async: the fake GitLab lives in this process and must keep answering. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

function localConfig(name: string): string {
  const p = join(dir, name);
  writeFileSync(p, contractConfig(fake.url, 4, [`stateDir: ${join(dir, 'state')}`]));
  return p;
}

describe('fleetrunner verify (built CLI, fake GitLab, local executor)', () => {
  it('a token GitLab accepts and sshd present: every row passes, exit 0, the token never printed', async () => {
    const { token } = fake.addRunner();
    const r = await cli(['verify', '--config', localConfig('good.yaml')], { FR_E2E_TOKEN: token });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^EXECUTOR +CHECK +TARGET +RESULT +DETAIL\n/);
    expect(r.out).toMatch(new RegExp(`\\ngitlab +gitlab-token +${fake.url.replace(/\./g, '\\.')} +pass +runner \\d+`));
    expect(r.out).toMatch(/\nlocal +sshd +\/usr\/sbin\/sshd +pass/);
    expect(r.out).toContain('all 2 checks passed');
    expect(r.out).not.toContain(token);
    expect(fake.violations).toEqual([]);
  });

  it('a token GitLab refuses: exit 1, naming the failing check, without the token', async () => {
    const token = `glrt-${randomBytes(12).toString('hex')}`;
    const r = await cli(['verify', '--config', localConfig('bad.yaml')], { FR_E2E_TOKEN: token });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\ngitlab +gitlab-token +\S+ +fail +HTTP 403: token refused/);
    expect(r.out).toContain('1 of 2 checks failed');
    expect(r.out + r.err).not.toContain(token);
  });

  it('checks the token of every runner of `runners:`, naming the runner whose token GitLab refuses', async () => {
    const { token } = fake.addRunner();
    const refused = `glrt-${randomBytes(12).toString('hex')}`;
    const p = join(dir, 'runners.yaml');
    writeFileSync(
      p,
      contractConfig(fake.url, 4, [`stateDir: ${join(dir, 'state')}`, 'runners:', '  - name: deploy', '    token: ${FR_E2E_DEPLOY}', '    executors: [deploy]'], false, [
        '  - name: local',
        '    provider: local',
        '    maxMachines: 1',
        '  - name: deploy',
        '    provider: local',
        '    maxMachines: 1',
      ]),
    );
    const r = await cli(['verify', '--config', p], { FR_E2E_TOKEN: token, FR_E2E_DEPLOY: refused });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\ngitlab +gitlab-token +http:\/\/\S+ +pass +runner \d+/);
    expect(r.out).toMatch(/\ngitlab +gitlab-token +http:\/\/\S+ \(runner deploy\) +fail +HTTP 403: token refused/);
    expect(r.out + r.err).not.toContain(refused);
    expect(r.out + r.err).not.toContain(token);
  });

  it('a bad config exits 2 as validate does; an unknown --executor exits 2; --help lists verify', async () => {
    const bad = join(dir, 'invalid.yaml');
    writeFileSync(bad, contractConfig(fake.url).replace('maxMachines: 4', 'maxMachines: -1'));
    const r = await cli(['verify', '--config', bad], { FR_E2E_TOKEN: 'glrt-x' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/executors\[0\]\.maxMachines/);
    const unknown = await cli(['verify', '--config', localConfig('unknown.yaml'), '--executor', 'nope'], { FR_E2E_TOKEN: 'glrt-x' });
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('no executor named "nope" (have: local)');
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(help.stdout).toContain('fleetrunner verify --config FILE');
  });
});
