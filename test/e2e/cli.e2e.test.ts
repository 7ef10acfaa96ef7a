import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import { freeLoopbackPort } from '../../src/providers/local/sshd-process.js';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import { FakeSsm } from '../helpers/fake-ssm.js';
import { contractConfig } from './harness.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');
const dir = mkdtempSync(join(tmpdir(), 'fr-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Made at test time: no token-shaped literal lives in the repository. */
const testToken = () => `glrt-${randomBytes(12).toString('hex')}`;

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Async: the fake GitLab lives in this process and must keep answering. */
function cliAsync(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('fleetrunner CLI', () => {
  it('validate: the contract config exits 0', () => {
    const p = file('ok.yaml', contractConfig('http://127.0.0.1:8080').replace('${FR_E2E_TOKEN}', testToken()));
    const r = cli(['validate', '--config', p]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('valid');
  });

  it('validate: exits 2 naming the key path', () => {
    const p = file('bad.yaml', contractConfig('http://127.0.0.1:8080').replace('${FR_E2E_TOKEN}', 'glrt-x').replace('maxMachines: 4', 'maxMachines: -1'));
    const r = cli(['validate', '--config', p]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/executors\[0\]\.maxMachines/);
  });

  it('validate: a missing env var names the key and the variable, never a value', () => {
    const p = file('env.yaml', contractConfig('http://127.0.0.1:8080'));
    const r = cli(['validate', '--config', p], { FR_E2E_TOKEN: '' });
    expect(r.code).toBe(2);
    expect(r.err).toContain('gitlab.token: environment variable FR_E2E_TOKEN is not set');
  });

  it('validate: an unreadable file exits 2', () => {
    expect(cli(['validate', '--config', join(dir, 'nope.yaml')]).code).toBe(2);
  });

  // The text only; test/e2e/dind-vm.e2e.test.ts boots this user data (privileged executor, bakedAmi) in a VM.
  it('render-userdata prints cloud-init for an ec2 executor, without any GitLab token', () => {
    const token = testToken();
    const p = file('ec2.yaml', `gitlab:\n  url: https://gitlab.example.com\n  token: ${token}\nconcurrent: 2\nexecutors:\n  - name: dind\n    provider: ec2\n    style: docker\n    privileged: true\n    maxMachines: 2\n    ec2:\n      subnets: [subnet-0aaa1111]\n      instanceTypes: [c6i.xlarge]\n`);
    const r = cli(['render-userdata', '--config', p, '--executor', 'dind']);
    expect(r.code).toBe(0);
    expect(r.out.startsWith('#cloud-config')).toBe(true);
    expect(r.out).toContain('ssh-ed25519 ');
    expect(r.out).not.toContain(token);
    const local = file('local.yaml', contractConfig('http://127.0.0.1:8080').replace('${FR_E2E_TOKEN}', token));
    const bad = cli(['render-userdata', '--config', local, '--executor', 'local']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/executors\[0\]\.provider: executor "local" uses provider local, not ec2/);
    const none = cli(['render-userdata', '--config', p, '--executor', 'nope']);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/no executor named "nope" \(have: dind\)/);
  });

  it('--help lists the commands; an unknown command exits 2', () => {
    const h = cli(['--help']);
    expect(h.code).toBe(0);
    for (const c of ['run', 'validate', 'demo']) expect(h.out).toContain(`fleetrunner ${c}`);
    expect(cli(['frobnicate']).code).toBe(2);
  });

  it('the config from FLEETRUNNER_CONFIG_YAML or an SSM parameter (the SDK over HTTP); two sources at once exit 2', async () => {
    const text = contractConfig('http://127.0.0.1:8080');
    const yaml = cli(['validate'], { FLEETRUNNER_CONFIG_YAML: text, FR_E2E_TOKEN: testToken() });
    expect(yaml.code).toBe(0);
    expect(yaml.out).toMatch(/^\$FLEETRUNNER_CONFIG_YAML: valid/);
    const ssm = new FakeSsm();
    const endpoint = await ssm.listen();
    try {
      await ssm.client.send(new PutParameterCommand({ Name: '/fleetrunner/e2e/config', Value: text, Type: 'SecureString' }));
      const aws = { AWS_ENDPOINT_URL_SSM: endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'fake-access-key', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true', FR_E2E_TOKEN: testToken() };
      const r = await cliAsync(['validate'], { ...aws, FLEETRUNNER_CONFIG_SSM_PARAMETER: '/fleetrunner/e2e/config' });
      // (out is stdout and stderr: on Node 20 the SDK adds a warning about its coming Node 22 minimum)
      expect(r).toMatchObject({ code: 0, out: expect.stringMatching(/^ssm:\/fleetrunner\/e2e\/config: valid/m) });
      const missing = await cliAsync(['validate'], { ...aws, FLEETRUNNER_CONFIG_SSM_PARAMETER: '/fleetrunner/e2e/none' });
      expect(missing).toMatchObject({ code: 2, out: expect.stringMatching(/^fleetrunner: cannot read config from SSM parameter \/fleetrunner\/e2e\/none: it does not exist \(FLEETRUNNER_CONFIG_SSM_PARAMETER\)$/m) });
    } finally {
      await ssm.close();
    }
    const both = cli(['validate'], { FLEETRUNNER_CONFIG_YAML: text, FLEETRUNNER_CONFIG: join(dir, 'ok.yaml') });
    expect(both.code).toBe(2);
    expect(both.err).toContain('the configuration is named twice: FLEETRUNNER_CONFIG and FLEETRUNNER_CONFIG_YAML are both set');
  }, 90_000);

  it('render-config prints the effective config with the token masked', () => {
    const token = testToken();
    const r = cli(['render-config'], { FLEETRUNNER_CONFIG_YAML: contractConfig('http://127.0.0.1:8080'), FR_E2E_TOKEN: token });
    expect(r.code).toBe(0);
    expect(r.out).toContain('# fleetrunner: effective configuration from $FLEETRUNNER_CONFIG_YAML');
    expect(r.out).toMatch(/^ {2}token: "?\[MASKED\]"?$/m);
    expect(r.out).toContain('checkIntervalMs: 3000');
    expect(r.out + r.err).not.toContain(token);
    expect(cli(['--help']).out).toContain('fleetrunner render-config --config FILE');
  }, 60_000);

  it('dist/cli/main.js is the CLI too, as installed bin/fleetrunner.js is', () => {
    const main = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
    const v = spawnSync(process.execPath, [main, '--version'], { encoding: 'utf8', timeout: 30_000 });
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^fleetrunner \d+\.\d+\.\d+/);
    const bad = spawnSync(process.execPath, [main, 'validate', '--config', join(dir, 'missing.yaml')], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('cannot read config');
  });

  it('run: a token GitLab refuses exits 2 with a clear message and without the token', async () => {
    const fake = new FakeGitLab();
    await fake.start();
    try {
      const token = testToken();
      const p = file('refused.yaml', contractConfig(fake.url) + `stateDir: ${join(dir, 'state')}\n`);
      const r = await cliAsync(['run', '--config', p], { FR_E2E_TOKEN: token });
      expect(r.code).toBe(2);
      expect(r.out).toMatch(/GitLab refused the runner token \(403\)/);
      // The effective configuration is logged first, with the token masked.
      const logged = r.out.split('\n').find((l) => l.includes('"msg":"effective configuration"'));
      expect(JSON.parse(logged!)).toMatchObject({ source: p, config: { gitlab: { url: fake.url, token: '[MASKED]' }, concurrent: 4 } });
      expect(r.out).not.toContain(token);
    } finally {
      await fake.stop();
    }
  });

  it('run: waits for a GitLab that is not up yet, retrying with a log line per attempt, then takes jobs', async () => {
    const port = await freeLoopbackPort();
    const fake = new FakeGitLab();
    const { token } = fake.addRunner();
    const p = file('later.yaml', contractConfig(`http://127.0.0.1:${port}`) + `stateDir: ${join(dir, 'state-later')}\n`);
    const child = spawn(process.execPath, [BIN, 'run', '--config', p], { env: { ...process.env, FR_E2E_TOKEN: token } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      for (let i = 0; i < 200 && (out.match(/GitLab is not reachable yet/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      expect((out.match(/GitLab is not reachable yet/g) ?? []).length).toBeGreaterThanOrEqual(2);
      expect(child.exitCode).toBeNull();
      await fake.start(port);
      const project = await fake.createProject({ path: 'e2e/later', files: { 'README.md': 'x\n' } });
      const pipeline = await fake.createPipeline(project, [{ name: 'after-wait', script: ['echo gitlab came back'] }]);
      const job = await fake.waitForJobState(pipeline.jobIds[0]!, ['success', 'failed'], 90_000);
      expect(job.state).toBe('success');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await fake.stop();
    }
  }, 120_000);

  it('run: SIGTERM while waiting for GitLab exits 0 at once', async () => {
    const port = await freeLoopbackPort();
    const p = file('never.yaml', contractConfig(`http://127.0.0.1:${port}`) + `stateDir: ${join(dir, 'state-never')}\n`);
    const child = spawn(process.execPath, [BIN, 'run', '--config', p], { env: { ...process.env, FR_E2E_TOKEN: testToken() } });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (let i = 0; i < 200 && !out.includes('GitLab is not reachable yet'); i++) await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});
