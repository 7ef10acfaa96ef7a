// What a job on a local machine can and cannot reach when the coordinator runs as root: each machine has
// a user of its own, and everything of the coordinator and of other machines is out of that user's reach.
// Real sshd, real users (useradd), real /proc. Skipped when not root.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { connectSsh, type SshConnection } from '../../../src/executors/ssh-connection.js';
import { LocalProvider, namespacesSupported, type LocalProviderOptions } from '../../../src/providers/local/index.js';
import type { ConnectionInfo, Machine, OwnershipTags } from '../../../src/core/index.js';
import { killAllOfUser } from '../../../src/providers/local/job-users.js';

const asRoot = process.getuid?.() === 0;
const roots: string[] = [];
const made: Array<{ p: LocalProvider; ids: string[] }> = [];
const conns: SshConnection[] = [];
const tags: OwnershipTags = { fleet: 'isolation-test', executor: 'local', coordinator: 'c1' };

function newRoot(): string {
  const r = mkdtempSync(join(tmpdir(), 'fr-iso-test-'));
  roots.push(r);
  return r;
}

function provider(o: Partial<LocalProviderOptions> = {}): LocalProvider {
  const p = new LocalProvider({ fleet: 'iso', root: o.root ?? newRoot(), bootTimeoutMs: 10_000, terminateGraceMs: 1_000, ...o });
  made.push({ p, ids: [] });
  return p;
}

interface Booted {
  p: LocalProvider;
  machine: Machine;
  info: ConnectionInfo;
  conn: SshConnection;
  /** The machine's record as stored. */
  rec: { pid: number; username: string; jobUser?: { name: string; uid: number; gid: number }; jobDir?: string };
  dir: string;
}

async function boot(p: LocalProvider): Promise<Booted> {
  const r = await p.create(1, tags);
  expect(r.errors).toEqual([]);
  const machine = r.machines[0]!;
  made.find((x) => x.p === p)!.ids.push(machine.id);
  const info = await p.waitReady(machine);
  const conn = await connectSsh(info, { connectTimeoutMs: 10_000 });
  conns.push(conn);
  const dir = join(p.root, machine.id);
  return { p, machine, info, conn, dir, rec: JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as Booted['rec'] };
}

async function sh(conn: SshConnection, command: string): Promise<{ code: number | null; out: string }> {
  const ch = await conn.exec(command);
  return new Promise((resolve) => {
    let out = '';
    ch.on('data', (d: Buffer) => (out += d));
    ch.stderr.on('data', (d: Buffer) => (out += d));
    ch.on('close', (code?: number | null) => resolve({ code: code ?? null, out }));
  });
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function userExists(name: string): boolean {
  try {
    execFileSync('getent', ['passwd', name]);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Live (non-zombie) processes of `uid`: a killed process is a zombie until its new parent reaps it. */
function pidsOfUser(uid: number): number[] {
  const out = execFileSync('ps', ['-e', '-o', 'pid=,uid=,stat='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, u, stat]) => pid && Number(u) === uid && !stat!.startsWith('Z'))
    .map(([pid]) => Number(pid));
}

afterAll(async () => {
  for (const c of conns) c.close();
  for (const { p, ids } of made) await p.terminate([...ids, ...(existsSync(p.root) ? readdirSync(p.root) : [])]);
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe.skipIf(!asRoot)('local machines of a root coordinator', () => {
  it('run jobs as a user of their own, one per machine, with their dirs owned by it', async () => {
    const p = provider();
    const a = await boot(p);
    const b = await boot(p);
    for (const m of [a, b]) {
      const r = await sh(m.conn, 'id -un; id -u; id -Gn; echo "$HOME"; pwd; echo "$TMPDIR"; touch "$HOME/h" "$TMPDIR/t" && echo writable');
      expect(r.code).toBe(0);
      const [name, uid, groups, home, cwd, tmp] = r.out.split('\n');
      expect(name).toBe(m.info.username);
      expect(name).toMatch(/^fleetrunner-job-[0-9a-f]{10}$/);
      expect(name).toBe(m.rec.jobUser?.name);
      expect(Number(uid)).toBe(m.rec.jobUser?.uid);
      expect(Number(uid)).toBeGreaterThan(0);
      expect(groups!.split(' ')).not.toContain('docker'); // only with dockerGroup
      expect(groups!.split(' ')).not.toContain('root');
      expect(home).toBe(join(m.dir, 'home'));
      expect(cwd).toBe(home);
      expect(tmp).toBe(join(m.dir, 'tmp'));
      for (const d of ['builds', 'cache', 'tmp', 'home']) expect(statSync(join(m.dir, d)).uid).toBe(Number(uid));
    }
    expect(a.rec.jobUser!.uid).not.toBe(b.rec.jobUser!.uid);
    // Its own cache dir is writable too (what the cache stages use).
    expect((await sh(a.conn, `mkdir -p ${q(a.info.cacheDir)}/proj && touch ${q(a.info.cacheDir)}/proj/cache.zip && echo ok`)).out.trim()).toBe('ok');
    expect((await sh(a.conn, `mkdir -p ${q(a.info.buildsDir)}/g/p && echo ok`)).out.trim()).toBe('ok');
  });

  it("cannot read the coordinator's environment, state dir or the machine's keys", async () => {
    // A state dir as `fleetrunner run` makes it (mkdir -m 0700, files 0600), here in a world-searchable place.
    const stateDir = join(newRoot(), 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(stateDir, 'runner-token.json'), '{"token":"glrt-secret"}', { mode: 0o600 });
    execFileSync('chmod', ['o+x', join(stateDir, '..')]);

    const p = provider();
    const m = await boot(p);
    const coordinator = process.pid;
    // /proc/<pid>/environ is readable by the process's owner only (and ptrace-capable processes).
    const env = await sh(m.conn, `test -d /proc/${coordinator} && echo visible; cat /proc/${coordinator}/environ >/dev/null && echo LEAK; cat /proc/1/environ >/dev/null && echo LEAK1; true`);
    expect(env.out).toContain('visible'); // the process can be seen …
    expect(env.out).toMatch(/Permission denied/); // … but not its environment
    expect(env.out).not.toContain('LEAK');
    // Neither the sshd's (root) environment nor any other root process's.
    const sshd = await sh(m.conn, `cat /proc/${m.rec.pid}/environ >/dev/null && echo LEAK; true`);
    expect(sshd.out).not.toContain('LEAK');

    const secrets = [
      join(stateDir, 'runner-token.json'),
      join(m.dir, 'ssh', 'client_ed25519'),
      join(m.dir, 'ssh', 'host_ed25519'),
      join(m.dir, 'machine.json'),
      join(m.dir, 'sshd_config'),
      join(m.dir, 'sshd.log'),
    ];
    for (const f of secrets) {
      expect(existsSync(f)).toBe(true);
      const r = await sh(m.conn, `cat ${q(f)} >/dev/null && echo LEAK; true`);
      expect(r.out, f).not.toContain('LEAK');
      expect(r.out, f).toMatch(/Permission denied/);
    }
    for (const d of [stateDir, m.dir, join(m.dir, 'ssh'), p.root]) {
      const r = await sh(m.conn, `ls ${q(d)} >/dev/null && echo LEAK; true`);
      expect(r.out, d).not.toContain('LEAK');
    }
    // sshd's authorized_keys: readable (sshd reads it as the user), never changeable.
    const ak = join(m.dir, 'ssh', 'authorized_keys');
    const w = await sh(m.conn, `cat ${q(ak)} >/dev/null && echo readable; echo x >> ${q(ak)} && echo LEAK; mv ${q(join(m.dir, 'ssh'))} ${q(join(m.info.buildsDir, 'ssh'))} && echo LEAK; chmod 777 ${q(m.dir)} && echo LEAK; true`);
    expect(w.out).toContain('readable');
    expect(w.out).not.toContain('LEAK');
  });

  it("cannot reach another machine's files or processes", async () => {
    const p = provider();
    const a = await boot(p);
    const b = await boot(p);
    await sh(b.conn, `mkdir -p ${q(b.info.buildsDir)}/grp/proj && echo s3cret > ${q(b.info.buildsDir)}/grp/proj/file && echo s3cret > "$TMPDIR/f" && echo s3cret > "$HOME/f"`);
    const sleeper = `sleep 3${Math.floor(Math.random() * 1e6)}`;
    void b.conn.exec(sleeper);
    let bPid = 0;
    for (let i = 0; i < 50 && !bPid; i++) {
      bPid = Number(execFileSync('sh', ['-c', `pgrep -f '^${sleeper}$' || true`], { encoding: 'utf8' }).trim().split('\n')[0] || 0);
      if (!bPid) await new Promise((r) => setTimeout(r, 50));
    }
    expect(bPid).toBeGreaterThan(0);

    const paths = [join(b.info.buildsDir, 'grp', 'proj', 'file'), join(b.dir, 'tmp', 'f'), join(b.dir, 'home', 'f')];
    for (const f of paths) {
      const r = await sh(a.conn, `cat ${q(f)} && echo LEAK; true`);
      expect(r.out, f).not.toContain('s3cret');
    }
    const ls = await sh(a.conn, `ls ${q(b.dir)} ${q(b.info.buildsDir)} && echo LEAK; true`);
    expect(ls.out).not.toContain('LEAK');
    const sig = await sh(a.conn, `kill -0 ${bPid} && echo LEAK; cat /proc/${bPid}/environ >/dev/null && echo LEAK; true`);
    expect(sig.out).not.toContain('LEAK');
    expect(sig.out).toMatch(/not permitted|Permission denied/);
  });

  it('terminate leaves no process of the job user, deletes the user and what it left in /tmp', async () => {
    const p = provider();
    const m = await boot(p);
    const { name, uid } = m.rec.jobUser!;
    const mark = `${Date.now() % 100000}${Math.floor(Math.random() * 1e5)}`;
    // Daemonised with a scrubbed environment (no machine marker), in its own session; plus one attached.
    await sh(m.conn, `env -i setsid nohup /bin/sleep 1${mark} >/dev/null 2>&1 < /dev/null & setsid nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 < /dev/null & echo secret > /tmp/fr-left-${mark}; mkdir /dev/shm/fr-left-${mark}; echo started`);
    void m.conn.exec(`sleep 2${mark}`);
    for (let i = 0; i < 50 && pidsOfUser(uid).length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pidsOfUser(uid).length).toBeGreaterThanOrEqual(4);
    expect(existsSync(`/tmp/fr-left-${mark}`)).toBe(true);

    expect(await p.terminate([m.machine.id])).toEqual({ errors: [] });
    expect(pidsOfUser(uid)).toEqual([]);
    expect(userExists(name)).toBe(false);
    expect(existsSync(`/tmp/fr-left-${mark}`)).toBe(false);
    expect(existsSync(`/dev/shm/fr-left-${mark}`)).toBe(false);
    expect(existsSync(m.dir)).toBe(false);
  });

  it('killAllOfUser kills every process of the user at once, and nothing else', async () => {
    const p = provider();
    const m = await boot(p);
    const other = await boot(p);
    const user = m.rec.jobUser!;
    await sh(m.conn, 'env -i setsid nohup /bin/sleep 600 >/dev/null 2>&1 < /dev/null & nohup /bin/sleep 601 >/dev/null 2>&1 < /dev/null & echo started');
    await sh(other.conn, 'setsid nohup /bin/sleep 602 >/dev/null 2>&1 < /dev/null & echo started');
    for (let i = 0; i < 50 && pidsOfUser(user.uid).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pidsOfUser(user.uid).length).toBeGreaterThanOrEqual(2);
    await killAllOfUser(user);
    for (let i = 0; i < 50 && pidsOfUser(user.uid).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pidsOfUser(user.uid)).toEqual([]);
    expect(pidsOfUser(other.rec.jobUser!.uid).length).toBeGreaterThan(0); // another machine's user is untouched
    expect(alive(m.rec.pid)).toBe(true); // and so is the (root) sshd
    await expect(killAllOfUser({ name: 'root', uid: 0, gid: 0 })).rejects.toThrow(/refusing/);
  });

  it('terminate of a machine whose record is lost still finds and deletes its user', async () => {
    const p = provider();
    const m = await boot(p);
    const { name, uid } = m.rec.jobUser!;
    await sh(m.conn, 'env -i setsid nohup /bin/sleep 600 >/dev/null 2>&1 < /dev/null & echo started');
    writeFileSync(join(m.dir, 'machine.json'), '{not json');
    expect(await p.terminate([m.machine.id])).toEqual({ errors: [] });
    expect(pidsOfUser(uid)).toEqual([]);
    expect(userExists(name)).toBe(false);
    expect(alive(m.rec.pid)).toBe(false); // the sshd, found by its config path
  });

  it('removes the user and processes of a machine whose directory was deleted without terminate', async () => {
    const root = newRoot();
    const p = provider({ root });
    const m = await boot(p);
    const { name, uid } = m.rec.jobUser!;
    await sh(m.conn, 'env -i setsid nohup /bin/sleep 600 >/dev/null 2>&1 < /dev/null & echo started');
    rmSync(root, { recursive: true, force: true }); // as a test's clean-up or an impatient operator does
    expect(userExists(name)).toBe(true);
    // Any provider's list() (the fleet's garbage collection calls it every minute) sweeps such users.
    await provider().list({ fleet: 'whatever' });
    expect(userExists(name)).toBe(false);
    expect(pidsOfUser(uid)).toEqual([]);
    expect(alive(m.rec.pid)).toBe(false);
  });

  it('a failed create deletes the user it made', async () => {
    const root = newRoot();
    const p = provider({ root, sshdPath: '/nonexistent/sshd' });
    const usersOfRoot = () => execFileSync('getent', ['passwd'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${root}/`));
    const r = await p.create(2, tags);
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]!.message).toMatch(/sshd/);
    expect(readdirSync(root)).toEqual([]);
    expect(usersOfRoot()).toEqual([]); // the comment and home of a machine's user name its directory
  });

  it('with dockerGroup, the job user can use docker', async (t) => {
    try {
      execFileSync('docker', ['info'], { stdio: 'ignore' });
    } catch {
      t.skip();
      return;
    }
    const m = await boot(provider({ dockerGroup: true }));
    const r = await sh(m.conn, 'id -Gn; docker version --format "{{.Server.Version}}"');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]!.split(' ')).toContain('docker');
  });

  it('puts the job dirs elsewhere when a parent of the root is private, and cleans them up', async () => {
    const parent = newRoot(); // mkdtemp: 0700, as the demo's directory
    expect(statSync(parent).mode & 0o777).toBe(0o700);
    const p = provider({ root: join(parent, 'machines') });
    const m = await boot(p);
    expect(m.rec.jobDir).toBeDefined();
    expect(m.info.buildsDir).toBe(join(m.rec.jobDir!, 'builds'));
    expect(statSync(parent).mode & 0o777).toBe(0o700); // not opened up
    const r = await sh(m.conn, `id -un; echo "$HOME"; touch "$TMPDIR/x" && echo ok; ls ${q(parent)} && echo LEAK; true`);
    expect(r.out).toContain(m.rec.jobUser!.name);
    expect(r.out).toContain(join(m.rec.jobDir!, 'home'));
    expect(r.out).toContain('ok');
    expect(r.out).not.toContain('LEAK');
    expect(await p.terminate([m.machine.id])).toEqual({ errors: [] });
    expect(existsSync(m.rec.jobDir!)).toBe(false);
  });

  it('with an explicit username, sessions run as that user (no user of their own)', async () => {
    const p = provider({ username: userInfo().username });
    const m = await boot(p);
    expect(m.rec.jobUser).toBeUndefined();
    expect((await sh(m.conn, 'id -un')).out.trim()).toBe(userInfo().username);
  });

  describe('network namespace mode', () => {
    it('runs sessions as the job user in the namespace, and terminate kills them all', async (t) => {
      const support = await namespacesSupported();
      if (!support.ok) {
        t.skip();
        return;
      }
      const p = provider({ network: 'namespace' });
      const m = await boot(p);
      const r = await sh(m.conn, 'id -un; /usr/sbin/ip -4 -o addr show; setsid nohup sleep 600 >/dev/null 2>&1 < /dev/null & echo started');
      expect(r.out).toContain(m.rec.jobUser!.name);
      expect(r.out).toContain(`inet ${m.info.host}/30`);
      const uid = m.rec.jobUser!.uid;
      expect(pidsOfUser(uid).length).toBeGreaterThan(0);
      expect(await p.terminate([m.machine.id])).toEqual({ errors: [] });
      expect(pidsOfUser(uid)).toEqual([]);
      expect(userExists(m.rec.jobUser!.name)).toBe(false);
    });
  });
});
