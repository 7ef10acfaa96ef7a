// The instance agent from the rendered user data, run for real with bash: the watchdog against a temporary
// state directory whose file times stand in for the clock (and a fake uptime and poweroff), the spot
// notice against a small HTTP server standing in for IMDSv2.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { parseConfigText } from '../../../src/config/index.js';
import { renderUserData } from '../../../src/providers/ec2/user-data.js';
import { generateEd25519 } from '../../../src/providers/ssh-keys.js';
import { testToken } from '../../helpers/tokens.js';

const run = promisify(execFile);

const configText = (watchdog: string) => `gitlab: { url: https://gitlab.example.com, token: ${testToken('glrt-')} }
concurrent: 1
executors:
  - name: dind
    provider: ec2
    maxMachines: 1
    ec2:
      subnets: [subnet-0aaa1111]
      instanceTypes: [c6i.xlarge]
      spot: true
${watchdog}`;

function render(watchdog = '') {
  const ec2 = parseConfigText(configText(watchdog)).executors[0]!.ec2!;
  const host = generateEd25519('host');
  const client = generateEd25519('client');
  const text = renderUserData(ec2, 'dind', { clientPublicKey: client.public, hostPrivateKey: host.private, hostPublicKey: host.public });
  return parseYaml(text) as { write_files: Array<{ path: string; permissions: string; content: string }>; runcmd: unknown[] };
}

const fileOf = (doc: ReturnType<typeof render>, path: string) => {
  const f = doc.write_files.find((w) => w.path === path);
  if (!f) throw new Error(`user data writes no ${path}`);
  return f;
};

const dir = mkdtempSync(join(tmpdir(), 'fr-agent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const doc = render();
const agentPath = join(dir, 'fleetrunner-agent');
writeFileSync(agentPath, fileOf(doc, '/usr/local/sbin/fleetrunner-agent').content, { mode: 0o755 });
// The fake poweroff records why it was called.
const poweroffPath = join(dir, 'poweroff');
writeFileSync(poweroffPath, '#!/bin/bash\nprintf "%s\\n" "$1" >> "$FAKE_POWEROFF_LOG"\n', { mode: 0o755 });

describe('user data: the agent', () => {
  it('installs the agent as a systemd service started before the bootstrap, with the configured limits', () => {
    const agent = fileOf(doc, '/usr/local/sbin/fleetrunner-agent');
    expect(agent.permissions).toBe('0755');
    expect(agent.content).toContain('idle_timeout=${FLEETRUNNER_WATCHDOG_IDLE_TIMEOUT:-1800}');
    expect(agent.content).toContain('max_lifetime=${FLEETRUNNER_WATCHDOG_MAX_LIFETIME:-86400}');
    expect(agent.content).toContain("state_dir=${FLEETRUNNER_STATE_DIR:-'/var/lib/fleetrunner'}");
    const unit = fileOf(doc, '/etc/systemd/system/fleetrunner-agent.service');
    expect(unit.content).toMatch(/ExecStart=\/usr\/local\/sbin\/fleetrunner-agent run/);
    expect(unit.content).toMatch(/Restart=always/);
    expect(doc.runcmd).toEqual([['systemctl', 'enable', '--now', 'fleetrunner-agent.service'], ['/usr/local/sbin/fleetrunner-bootstrap']]);
  });

  it('takes ec2.watchdog from the config', () => {
    const own = render('      watchdog: { idleTimeout: 45m, maxLifetime: 2d }\n');
    const agent = fileOf(own, '/usr/local/sbin/fleetrunner-agent').content;
    expect(agent).toContain(':-2700}');
    expect(agent).toContain(':-172800}');
  });

  it('is valid bash', async () => {
    await expect(run('bash', ['-n', agentPath])).resolves.toBeDefined();
  });

  it('refuses an unknown mode', async () => {
    await expect(run('bash', [agentPath, 'nonsense'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage: fleetrunner-agent run|check|poll') });
  });
});

describe('watchdog check', () => {
  let stateDir: string;
  let uptimeFile: string;
  let poweroffLog: string;
  const now = () => Math.floor(Date.now() / 1000);
  /** Sets a file's mtime `agoS` seconds in the past (creating it). */
  const touchAgo = (rel: string, agoS: number) => {
    const p = join(stateDir, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    if (!existsSync(p)) writeFileSync(p, '');
    const t = now() - agoS;
    utimesSync(p, t, t);
  };
  const uptime = (s: number) => writeFileSync(uptimeFile, `${s}.42 ${s * 2}.00\n`);
  const check = async (env: Record<string, string> = {}) => {
    const out = await run('bash', [agentPath, 'check'], {
      env: {
        PATH: process.env.PATH!,
        FLEETRUNNER_STATE_DIR: stateDir,
        FLEETRUNNER_UPTIME_FILE: uptimeFile,
        FLEETRUNNER_POWEROFF: poweroffPath,
        FAKE_POWEROFF_LOG: poweroffLog,
        ...env,
      },
    });
    return { stdout: out.stdout, poweredOff: existsSync(poweroffLog) ? readFileSync(poweroffLog, 'utf8') : undefined };
  };

  beforeEach(() => {
    const d = mkdtempSync(join(dir, 'case-'));
    stateDir = join(d, 'state');
    mkdirSync(stateDir);
    chmodSync(stateDir, 0o700);
    uptimeFile = join(d, 'uptime');
    poweroffLog = join(d, 'poweroff.log');
  });

  it('leaves a freshly booted machine alone, even before a coordinator reached it', async () => {
    uptime(120);
    expect((await check()).poweredOff).toBeUndefined();
  });

  it('leaves a machine whose coordinator touched the heartbeat recently alone', async () => {
    uptime(5 * 3600);
    touchAgo('heartbeat', 60);
    expect((await check()).poweredOff).toBeUndefined();
  });

  it('powers off when the heartbeat is older than the idle timeout', async () => {
    uptime(5 * 3600);
    touchAgo('heartbeat', 31 * 60);
    const { poweredOff, stdout } = await check();
    expect(poweredOff).toMatch(/^no coordinator heartbeat and no job for 18\d\ds \(idleTimeout 1800s\)\n$/);
    expect(stdout).toContain('fleetrunner-agent: powering off: no coordinator heartbeat');
  });

  it('powers off a machine no coordinator ever reached once it has been up for the idle timeout', async () => {
    uptime(31 * 60);
    expect((await check()).poweredOff).toMatch(/^no coordinator heartbeat and no job/);
  });

  it('counts a job writing its records under the state directory as activity', async () => {
    uptime(5 * 3600);
    touchAgo('heartbeat', 3 * 3600);
    touchAgo('jobs/1234/output', 120);
    expect((await check()).poweredOff).toBeUndefined();
  });

  it('does not count its own interruption notice as activity', async () => {
    uptime(5 * 3600);
    touchAgo('heartbeat', 40 * 60);
    touchAgo('interruption', 10);
    expect((await check()).poweredOff).toMatch(/^no coordinator heartbeat/);
  });

  it('powers off at the maximum lifetime even with a live coordinator', async () => {
    uptime(24 * 3600);
    touchAgo('heartbeat', 5);
    expect((await check()).poweredOff).toBe('maximum lifetime reached (up 86400s, maxLifetime 86400s)\n');
  });

  it('takes its limits from the environment (as the rendered defaults can be overridden)', async () => {
    uptime(3600);
    touchAgo('heartbeat', 6 * 60);
    expect((await check({ FLEETRUNNER_WATCHDOG_IDLE_TIMEOUT: '300' })).poweredOff).toMatch(/idleTimeout 300s/);
  });
});

describe('spot interruption poll (IMDSv2)', () => {
  let server: Server;
  let imdsUrl: string;
  const token = randomBytes(16).toString('hex');
  let notice: string | undefined;
  const seen: Array<{ method: string; url: string; ttl?: string; token?: string }> = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const h = (n: string) => (typeof req.headers[n] === 'string' ? (req.headers[n] as string) : undefined);
      seen.push({ method: req.method!, url: req.url!, ...(h('x-aws-ec2-metadata-token-ttl-seconds') && { ttl: h('x-aws-ec2-metadata-token-ttl-seconds') }), ...(h('x-aws-ec2-metadata-token') && { token: h('x-aws-ec2-metadata-token') }) });
      if (req.method === 'PUT' && req.url === '/latest/api/token') return void res.writeHead(200).end(token);
      if (req.method === 'GET' && req.url === '/latest/meta-data/spot/instance-action') {
        if (h('x-aws-ec2-metadata-token') !== token) return void res.writeHead(401).end();
        if (notice === undefined) return void res.writeHead(404).end('Not Found');
        return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(notice);
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    imdsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  let stateDir: string;
  let runDir: string;
  beforeEach(() => {
    const d = mkdtempSync(join(dir, 'imds-'));
    stateDir = join(d, 'state');
    mkdirSync(stateDir);
    runDir = join(d, 'run');
    seen.length = 0;
    notice = undefined;
  });
  const poll = (imds = imdsUrl) =>
    run('bash', [agentPath, 'poll'], { env: { PATH: process.env.PATH!, FLEETRUNNER_STATE_DIR: stateDir, FLEETRUNNER_AGENT_RUN_DIR: runDir, FLEETRUNNER_IMDS_URL: imds } });

  it('writes nothing while IMDS answers 404, and asks with a session token', async () => {
    await poll();
    expect(existsSync(join(stateDir, 'interruption'))).toBe(false);
    expect(seen).toEqual([
      { method: 'PUT', url: '/latest/api/token', ttl: '21600' },
      { method: 'GET', url: '/latest/meta-data/spot/instance-action', token },
    ]);
  });

  it('writes the notice as JSON with action and time, readable by the SSH user, linked from the state directory', async () => {
    notice = '{"action": "terminate", "time": "2026-12-06T22:10:00Z"}';
    const { stdout } = await poll();
    const path = join(stateDir, 'interruption');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ action: 'terminate', time: '2026-12-06T22:10:00Z' });
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readlinkSync(path)).toBe(join(runDir, 'interruption'));
    expect(stdout).toContain('spot interruption notice: action terminate at 2026-12-06T22:10:00Z');
    // A second poll leaves the first notice as it is.
    notice = '{"action": "stop", "time": "2026-12-06T22:11:00Z"}';
    await poll();
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ action: 'terminate' });
  });

  it('keeps only safe characters from what IMDS sent', async () => {
    notice = '{"action": "terminate\\"; rm -rf /", "time": "$(reboot)"}';
    await poll();
    expect(JSON.parse(readFileSync(join(stateDir, 'interruption'), 'utf8'))).toEqual({ action: 'unknown', time: '' });
  });

  it('never writes through a link the SSH user planted in the state directory', async () => {
    const victim = join(dir, `victim-${randomBytes(4).toString('hex')}`);
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(stateDir, 'interruption.tmp'));
    symlinkSync(join(dir, 'does-not-exist'), join(stateDir, 'interruption'));
    notice = '{"action": "terminate", "time": "2026-12-06T22:10:00Z"}';
    await poll();
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(readlinkSync(join(stateDir, 'interruption'))).toBe(join(runDir, 'interruption'));
  });

  it('waits for the state directory before writing (the bootstrap makes it)', async () => {
    rmSync(stateDir, { recursive: true });
    notice = '{"action": "terminate", "time": "2026-12-06T22:10:00Z"}';
    await poll();
    expect(existsSync(stateDir)).toBe(false);
  });

  it('does nothing when IMDS does not answer', async () => {
    await poll('http://127.0.0.1:1');
    expect(existsSync(join(stateDir, 'interruption'))).toBe(false);
  });
});
