import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { ConnectionInfo, OwnershipTags } from '../../../src/core/index.js';
import { HostKeyMismatchError, connectSsh, type SshConnection } from '../../../src/executors/ssh-connection.js';
import { LocalProvider, namespacesSupported, type LocalProviderOptions } from '../../../src/providers/local/index.js';
import { generateEd25519 } from '../../../src/providers/ssh-keys.js';
import { describeProviderContract } from './provider-contract.js';

const roots: string[] = [];
const providers: Array<{ p: LocalProvider; ids: string[] }> = [];

function newRoot(): string {
  const r = mkdtempSync(join(tmpdir(), 'fr-local-test-'));
  roots.push(r);
  return r;
}

function provider(o: Partial<LocalProviderOptions> = {}): LocalProvider {
  const p = new LocalProvider({ fleet: 'test', root: o.root ?? newRoot(), bootTimeoutMs: 10_000, terminateGraceMs: 1_000, ...o });
  providers.push({ p, ids: [] });
  return p;
}

const tags: OwnershipTags = { fleet: 'local-test', executor: 'local', coordinator: 'c1' };

async function createOne(p: LocalProvider, t = tags) {
  const r = await p.create(1, t);
  expect(r.errors).toEqual([]);
  const m = r.machines[0]!;
  providers.find((x) => x.p === p)?.ids.push(m.id);
  return { machine: m, info: await p.waitReady(m) };
}

async function run(conn: SshConnection, command: string): Promise<{ code: number | null; out: string }> {
  const ch = await conn.exec(command);
  return new Promise((resolve) => {
    let out = '';
    ch.on('data', (d: Buffer) => (out += d));
    ch.stderr.on('data', (d: Buffer) => (out += d));
    // ssh2 repeats the exit code on 'close'; an 'exit' listener added now could already be too late.
    ch.on('close', (code?: number | null) => resolve({ code: code ?? null, out }));
  });
}

function pgrep(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // exit 1: nothing matched
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

afterAll(async () => {
  // Every machine directory under our roots, whatever a failed test left behind.
  for (const { p, ids } of providers) {
    await p.terminate([...ids, ...(existsSync(p.root) ? readdirSync(p.root) : [])]);
  }
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describeProviderContract('local', async () => ({ provider: provider() }));

describe('LocalProvider', () => {
  it('lets the generated client key log in, as the current user, with the machine marker in the environment', async () => {
    const p = provider();
    const { machine, info } = await createOne(p);
    const conn = await connectSsh(info, { connectTimeoutMs: 10_000 });
    try {
      const r = await run(conn, 'id -un; echo "$FLEETRUNNER_LOCAL_MACHINE"; echo "$TMPDIR"');
      expect(r.code).toBe(0);
      const [user, marker, tmp] = r.out.trim().split('\n');
      expect(user).toBe(info.username);
      expect(marker).toBe(machine.id);
      expect(tmp).toBe(join(p.root, machine.id, 'tmp'));
      expect(existsSync(info.buildsDir)).toBe(true);
    } finally {
      conn.close();
    }
  });

  it('refuses a machine whose host key is not the expected one, without retrying', async () => {
    const p = provider();
    const { info } = await createOne(p);
    const other = generateEd25519('another machine').public;
    const wrong: ConnectionInfo = { ...info, hostPublicKey: other };
    // A retry loop would run into the test timeout long before this budget is spent.
    await expect(connectSsh(wrong, { connectTimeoutMs: 120_000 })).rejects.toBeInstanceOf(HostKeyMismatchError);
  });

  it('terminate kills the sshd, its sessions and processes that left their process group', async () => {
    const p = provider();
    const { machine, info } = await createOne(p);
    const mark = `${Date.now() % 100000}.${Math.floor(Math.random() * 1e6)}`;
    const conn = await connectSsh(info, { connectTimeoutMs: 10_000 });
    // One process daemonised into its own session, one still attached to a running session.
    await run(conn, `setsid nohup sleep 1${mark} >/dev/null 2>&1 < /dev/null & echo started`);
    const attached = conn.exec(`sleep 2${mark}`);
    await attached;
    for (let i = 0; i < 50 && pgrep(`sleep [12]${mark}`).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pgrep(`sleep [12]${mark}`)).toHaveLength(2);

    const lost = new Promise((resolve) => conn.onLost(resolve));
    const sshdPid = (await listOne(p, machine.id)).pid;
    expect(await p.terminate([machine.id])).toEqual({ errors: [] });
    expect(pgrep(`sleep [12]${mark}`)).toEqual([]);
    expect(alive(sshdPid)).toBe(false);
    expect(existsSync(join(p.root, machine.id))).toBe(false);
    await lost; // the open session was cut too
    conn.close();
  });

  it('a new provider on the same root finds the machines of the old one', async () => {
    const root = newRoot();
    const first = provider({ root });
    const { machine } = await createOne(first, { ...tags, fleet: 'restart' });
    const second = provider({ root });
    const found = await second.list({ fleet: 'restart' });
    expect(found.map((m) => [m.id, m.state])).toEqual([[machine.id, 'running']]);
    const conn = await connectSsh(found[0]!.connection!, { connectTimeoutMs: 10_000 });
    expect((await run(conn, 'true')).code).toBe(0);
    conn.close();

    // A machine whose sshd died is listed as terminated, until it is terminated for good.
    process.kill((await listOne(second, machine.id)).pid, 'SIGKILL');
    for (let i = 0; i < 50 && (await second.list({ fleet: 'restart' }))[0]?.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await second.list({ fleet: 'restart' }))[0]?.state).toBe('terminated');
    expect(await second.terminate([machine.id])).toEqual({ errors: [] });
    expect(await second.list({ fleet: 'restart' })).toEqual([]);
  });

  it('labels are kept in machine.json: a new provider on the same root lists them; a removed machine cannot be labelled', async () => {
    const root = newRoot();
    const first = provider({ root });
    const { machine } = await createOne(first, { ...tags, fleet: 'labels' });
    expect((await first.list({ fleet: 'labels' }))[0]!.labels).toBeUndefined();
    await Promise.all([first.label(machine.id, { state: 'busy', job: '17' }), first.label(machine.id, { state: 'idle' }), first.label(machine.id, { state: 'busy', job: '18' })]);
    const second = provider({ root });
    expect((await second.list({ fleet: 'labels' }))[0]!.labels).toEqual({ state: 'busy', job: '18' });
    await second.label(machine.id, { state: 'idle' });
    expect((await first.list({ fleet: 'labels' }))[0]!.labels).toEqual({ state: 'idle' });
    expect(JSON.parse(readFileSync(join(root, machine.id, 'machine.json'), 'utf8')).labels).toEqual({ state: 'idle', job: '' });
    await expect(second.label(machine.id, { state: 'busy', job: 'x' })).rejects.toThrow(/must be a GitLab job id/);
    expect(await second.terminate([machine.id])).toEqual({ errors: [] });
    await expect(second.label(machine.id, { state: 'idle' })).rejects.toThrow(/not found: its labels were not stored/);
  });

  it('create(3) returns three working machines', async () => {
    const p = provider();
    const r = await p.create(3, tags);
    providers.find((x) => x.p === p)?.ids.push(...r.machines.map((m) => m.id));
    expect(r.errors).toEqual([]);
    expect(new Set(r.machines.map((m) => m.connection?.port)).size).toBe(3);
  });

  it('reports a machine that cannot start as an error, not a throw', async () => {
    const p = provider({ sshdPath: '/nonexistent/sshd' });
    const r = await p.create(2, tags);
    expect(r.machines).toEqual([]);
    expect(r.errors).toHaveLength(2);
    expect(await p.list({ fleet: tags.fleet })).toEqual([]); // half-built machines were undone
  });

  describe('network namespace mode', () => {
    it('runs the machine in its own namespace and removes it on terminate', async (t) => {
      const support = await namespacesSupported();
      if (!support.ok) {
        console.log(`skipping namespace test: ${support.reason}`);
        t.skip();
        return;
      }
      const p = provider({ network: 'namespace' });
      const { machine, info } = await createOne(p);
      expect(info.host).toMatch(/^10\.213\.\d+\.\d+$/);
      expect(info.port).toBe(22);
      const conn = await connectSsh(info, { connectTimeoutMs: 10_000 });
      const r = await run(conn, 'ip -4 -o addr show');
      conn.close();
      expect(r.out).toContain(`inet ${info.host}/30`);
      expect(r.out).not.toContain('192.0.2.');
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(`fr-${machine.id}`);

      expect(await p.terminate([machine.id])).toEqual({ errors: [] });
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`fr-${machine.id}`);
      expect(execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' })).not.toContain(info.host.replace(/\d+$/, ''));
    });
  });
});

/** The machine's record as the provider stored it (the sshd pid is not part of the Machine contract). */
async function listOne(p: LocalProvider, id: string): Promise<{ pid: number }> {
  return JSON.parse(readFileSync(join(p.root, id, 'machine.json'), 'utf8')) as { pid: number };
}
