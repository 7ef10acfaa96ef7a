import { randomBytes } from 'node:crypto';
// `fleetrunner gc` through the BUILT CLI (`node bin/fleetrunner.js gc --config F`, build first: `npm run build`)
// with local machines made directly by a LocalProvider on the config's `local.root`: no coordinator runs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLease } from '../../src/cli/lease.js';
import { parseConfigText, type FleetConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Machine } from '../../src/core/machine.js';
import { deploymentIdentity } from '../../src/gitlab/index.js';
import { LocalProvider } from '../../src/providers/local/index.js';
import { contractConfig } from './harness.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');
const dir = mkdtempSync(join(tmpdir(), 'fr-gc-e2e-'));
const root = join(dir, 'machines');
const TOKEN = `glrt-${randomBytes(12).toString('hex')}`;
const env = { FR_E2E_TOKEN: TOKEN };
const executors = ['  - name: local', '    provider: local', '    style: shell', '    maxMachines: 4', '    local:', `      root: ${root}`];

function writeConfig(name: string, extra: string[] = []): { path: string; config: FleetConfig } {
  const text = contractConfig('http://127.0.0.1:9', 4, [`stateDir: ${join(dir, 'state')}`, ...extra], false, executors);
  const path = join(dir, name);
  writeFileSync(path, text);
  return { path, config: parseConfigText(text, env) };
}

const plain = writeConfig('plain.yaml');
const leased = writeConfig('leased.yaml', ['lease:', '  file:', `    path: ${join(dir, 'lease')}`]);
const provider = new LocalProvider({ fleet: plain.config.fleet, root, logger: silentLogger });
const mine = deploymentIdentity({ fleet: plain.config.fleet, gitlabUrl: plain.config.gitlab.url, token: TOKEN }).coordinatorId;
const other = deploymentIdentity({ fleet: plain.config.fleet, gitlabUrl: plain.config.gitlab.url, token: `glrt-${randomBytes(12).toString('hex')}` }).coordinatorId;
let ours: Machine;
let theirs: Machine;

beforeAll(async () => {
  const a = await provider.create(1, { fleet: plain.config.fleet, executor: 'local', coordinator: mine });
  const b = await provider.create(1, { fleet: plain.config.fleet, executor: 'local', coordinator: other });
  expect([...a.errors, ...b.errors]).toEqual([]);
  ours = a.machines[0]!;
  theirs = b.machines[0]!;
});

afterAll(async () => {
  const left = await provider.list({ fleet: plain.config.fleet }).catch(() => []);
  await provider.terminate(left.map((m) => m.id));
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

const row = (out: string, id: string) => out.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
const live = async () => (await provider.list({ fleet: plain.config.fleet })).filter((m) => m.state !== 'terminated').map((m) => m.id).sort();

describe('fleetrunner gc (built CLI, local machines, no coordinator running)', () => {
  it('without a lease nothing of this deployment is removed unless --force; another deployment is always kept', async () => {
    const r = await cli(['gc', '--config', plain.path, '--dry-run', '--grace', '0s']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^MACHINE +EXECUTOR +STATE +AGE +COORDINATOR +ACTION +REASON$/m);
    expect(row(r.out, ours.id)).toMatch(new RegExp(`^${ours.id} +local +running +\\S+ +${mine} +keep +coordinator_unknown$`));
    expect(row(r.out, theirs.id)).toMatch(new RegExp(`^${theirs.id} +local +running +\\S+ +${other} +keep +other_deployment$`));
    expect(r.out).toContain('coordinator: unknown: no `lease:` configured');
    expect(r.out).toContain('dry run: 0 to remove, 2 kept; nothing terminated');
    expect(r.out).not.toContain(TOKEN);

    const forced = await cli(['gc', '--config', plain.path, '--dry-run', '--grace', '0s', '--force']);
    expect(forced.code).toBe(0);
    expect(row(forced.out, ours.id)).toMatch(/ remove +no_coordinator$/);
    expect(row(forced.out, theirs.id)).toMatch(/ keep +other_deployment$/);
    expect(forced.out).toContain('dry run: 1 to remove, 1 kept; nothing terminated');
    expect(await live()).toEqual([ours.id, theirs.id].sort());
  });

  it('the default grace (30m) keeps new machines', async () => {
    const r = await cli(['gc', '--config', leased.path, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('coordinator: none running');
    expect(row(r.out, ours.id)).toMatch(/ keep +within_grace$/);
  });

  it('a lease held by a running coordinator keeps this deployment\'s machines', async () => {
    const held = await (await buildLease(leased.config, { stateDir: join(dir, 'state'), clock: systemClock, logger: silentLogger })).acquire(AbortSignal.timeout(5_000));
    expect(held).toBeDefined();
    try {
      const r = await cli(['gc', '--config', leased.path, '--grace', '0s']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/coordinator: running: the lease is held by \S+ pid \d+/);
      expect(row(r.out, ours.id)).toMatch(/ keep +running_coordinator$/);
      expect(r.out).toContain('nothing to remove');
      expect(await live()).toEqual([ours.id, theirs.id].sort());
    } finally {
      await held!.release();
    }
  });

  it('with the lease free: --dry-run lists the machine for removal and leaves it; gc removes it, never the other deployment\'s', async () => {
    const dry = await cli(['gc', '--config', leased.path, '--dry-run', '--grace', '0s']);
    expect(dry.code).toBe(0);
    expect(row(dry.out, ours.id)).toMatch(/ remove +no_coordinator$/);
    expect(dry.out).toContain('no_coordinator: no coordinator of this deployment runs and it is past the grace period');
    expect(await live()).toEqual([ours.id, theirs.id].sort());

    const r = await cli(['gc', '--config', leased.path, '--grace', '0s']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`removed 1 machine: ${ours.id}`);
    expect(await live()).toEqual([theirs.id]);

    // The lease was released: a coordinator (or the next gc) gets it at once.
    const again = await (await buildLease(leased.config, { stateDir: join(dir, 'state'), clock: systemClock, logger: silentLogger })).acquire(AbortSignal.timeout(1_000));
    expect(again).toBeDefined();
    await again!.release();
  });

  it('bad usage exits 2; --help lists gc', async () => {
    const bad = await cli(['gc', '--config', plain.path, '--grace', '30']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--grace: expected a duration');
    const noConfig = spawnSync(process.execPath, [BIN, 'gc'], { encoding: 'utf8', env: { ...process.env, FLEETRUNNER_CONFIG: '' } });
    expect(noConfig.status).toBe(2);
    const help = spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' });
    expect(help.stdout).toContain('fleetrunner gc --config FILE [--dry-run]');
  });
});
