// The warm idle pool (executors[].pool) through the built CLI, against the strict fake GitLab and real sshd
// machines. Every machine of a test lives under its own local.root, so what is alive is read from the host:
// a folder per machine (machine.json), its sshd pid in /proc, and the held SSH connection of an idle
// machine as a session process under that sshd.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/fakegitlab/index.js';
import { freeLoopbackPort } from '../../src/providers/local/sshd-process.js';
import { REMOTE_SHELL_COMMAND } from '../../src/executors/remote-shell.js';
import { startStack, waitFinished, type Stack, type StackOptions } from './harness.js';

let stack: Stack | undefined;
let root: string | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  // Safety net for a failed test: a SIGKILLed coordinator leaves its (detached) sshd machines running.
  if (root) {
    killProcessesOf(root);
    rmSync(root, { recursive: true, force: true });
  }
  root = undefined;
});

interface PoolOptions {
  idleCount: number;
  maxUseCount: number;
  maxMachines?: number;
}

/** A stack whose only executor is a local one with an idle pool, its machines under a fresh local.root. */
async function startPoolStack(p: PoolOptions, o: StackOptions = {}): Promise<{ stack: Stack; root: string }> {
  root = mkdtempSync(join(tmpdir(), 'fr-pool-'));
  stack = await startStack({
    ...o,
    executors: [
      '  - name: local',
      '    provider: local',
      '    style: shell',
      `    maxMachines: ${p.maxMachines ?? 3}`,
      '    local:',
      `      root: ${root}`,
      '    pool:',
      `      idleCount: ${p.idleCount}`,
      '      idleTime: 10m',
      `      maxUseCount: ${p.maxUseCount}`,
    ],
  });
  return { stack, root };
}

function expectClean(s: Stack, jobs: JobView[] = []) {
  expect(s.fake.violations).toEqual([]);
  const log = s.log();
  expect(log).not.toContain(s.token);
  for (const j of jobs) expect(log).not.toContain(j.token);
}

// ---- the host's view of local machines ----

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string;
}

function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z' || rest[0] === 'X') continue;
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid: Number(e), ppid: Number(rest[1]), cmdline });
    } catch {
      // gone while we looked
    }
  }
  return out;
}

interface HostMachine {
  id: string;
  dir: string;
  pid?: number;
  /** The machine's sshd listener runs. */
  alive: boolean;
  /** SSH connections open to it (each a process under the listener). */
  sessions: number;
  /** Exactly one connection, authenticated ("sshd: user@notty"), with the first stage shell a warm machine
   *  keeps waiting and nothing else but its control shell: the pool's held connection. */
  held: boolean;
}

/** A shell a warm machine keeps waiting on its held connection: the first stage's (`setsid -w bash … -c …`)
 *  or the control shell (`bash … -s`); anything else in the tree is a job's. */
const WAITING_SHELL = new RegExp(`^(setsid -w )?(bash --noprofile --norc -s|${escapeRegExp(stageShellStart())})`);
/** The first stage's shell: only the pool's held connection has one waiting (a job's connection that has
 *  not closed yet still has its control shell, and must not pass for the pool's). */
const FIRST_STAGE_SHELL = new RegExp(`^(setsid -w )?${escapeRegExp(stageShellStart())}`);

/** How a stage shell's command line starts as ps shows it (its script's quotes gone), from the command itself. */
function stageShellStart(): string {
  const from = REMOTE_SHELL_COMMAND.slice(REMOTE_SHELL_COMMAND.indexOf('bash --noprofile'));
  return from.replace("'", '').slice(0, from.indexOf('read -r -N') + 'read -r -N'.length - 1);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function hostMachines(root: string): HostMachine[] {
  if (!existsSync(root)) return [];
  const procs = processes();
  const out: HostMachine[] = [];
  for (const id of readdirSync(root)) {
    const dir = join(root, id);
    let rec: { pid?: number } | undefined;
    try {
      rec = JSON.parse(readFileSync(join(dir, 'machine.json'), 'utf8')) as { pid?: number };
    } catch {
      rec = undefined; // being created or removed
    }
    const pid = rec?.pid;
    const listener = pid !== undefined ? procs.find((p) => p.pid === pid && p.cmdline.includes(join(dir, 'sshd_config'))) : undefined;
    const sessions = listener ? procs.filter((p) => p.ppid === listener.pid) : [];
    const tree = listener ? descendants(procs, listener.pid) : [];
    out.push({
      id,
      dir,
      ...(pid !== undefined && { pid }),
      alive: listener !== undefined,
      sessions: sessions.length,
      held:
        sessions.length === 1 &&
        tree.every((p) => p.cmdline.startsWith('sshd:') || WAITING_SHELL.test(p.cmdline)) &&
        tree.some((p) => /^sshd: \S+@notty$/.test(p.cmdline)) &&
        tree.some((p) => FIRST_STAGE_SHELL.test(p.cmdline)),
    });
  }
  return out;
}

function descendants(procs: ProcInfo[], root: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (let queue = [root]; queue.length > 0; ) {
    const pid = queue.shift()!;
    for (const c of procs.filter((p) => p.ppid === pid)) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

/** Processes that belong to machines under `root`: their sshd (by its config path) and what runs in their sessions. */
function processesOf(root: string): ProcInfo[] {
  return processes().filter((p) => {
    if (p.cmdline.includes(root)) return true;
    try {
      return readFileSync(`/proc/${p.pid}/environ`, 'latin1').includes(`=${root}/`);
    } catch {
      return false;
    }
  });
}

function killProcessesOf(root: string): void {
  for (const p of processesOf(root)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Machines the coordinator logged as booted into the idle pool. */
function loggedIdle(s: Stack): Set<string> {
  const ids = new Set<string>();
  for (const line of s.log().split('\n')) {
    if (!line.includes('machine ready and idle')) continue;
    try {
      const rec = JSON.parse(line) as { msg?: string; machine?: string };
      if (rec.msg === 'machine ready and idle' && rec.machine) ids.add(rec.machine);
    } catch {
      // not a log line
    }
  }
  return ids;
}

/** A live machine with its SSH connection held and nothing running on it. */
function isIdle(m: HostMachine): boolean {
  return m.alive && m.held;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, diag: () => unknown, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(diag(), null, 2)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the pool is exactly one booted, connected, idle machine other than `not`; returns it. */
function waitOneIdle(s: Stack, r: string, not: string[] = []): Promise<HostMachine> {
  return waitFor(
    `one idle pool machine (not ${not.join(', ') || '-'})`,
    () => {
      const ms = hostMachines(r);
      const m = ms[0];
      return ms.length === 1 && m && isIdle(m) && loggedIdle(s).has(m.id) && !not.includes(m.id) ? m : undefined;
    },
    () => ({ machines: hostMachines(r), logTail: s.log().slice(-3000) }),
  );
}

function waitGone(r: string, m: HostMachine): Promise<true> {
  return waitFor(
    `machine ${m.id} removed`,
    () => !existsSync(m.dir) && !processes().some((p) => p.pid === m.pid && p.cmdline.includes(m.dir)) && true,
    () => ({ machines: hostMachines(r), log: stack?.log().slice(-6000) }),
  );
}

// ---- jobs that say where they ran ----

const WHERE = ['echo "builds=$CI_BUILDS_DIR"', 'echo "project=$CI_PROJECT_DIR"'];

function ranIn(job: JobView): { builds: string; project: string } {
  const builds = /^builds=(\S+)/m.exec(job.traceText)?.[1];
  const project = /^project=(\S+)/m.exec(job.traceText)?.[1];
  if (!builds || !project) throw new Error(`job ${job.name} did not print its directories:\n${job.traceText}`);
  return { builds, project };
}

function expectRanOn(job: JobView, m: HostMachine) {
  const { builds, project } = ranIn(job);
  expect(builds).toBe(join(m.dir, 'builds'));
  expect(project.startsWith(`${join(m.dir, 'builds')}/`)).toBe(true);
}

describe('e2e: warm idle pool', () => {
  it('idleCount 1: a job runs on the waiting machine, which is then replaced by a fresh idle one (maxUseCount 1)', async () => {
    const { stack: s, root: r } = await startPoolStack({ idleCount: 1, maxUseCount: 1 });
    const a = await waitOneIdle(s, r);
    expect(hostMachines(r)).toHaveLength(1);

    const project = await s.fake.createProject({ path: 'e2e/pool-one', files: { 'README.md': 'e2e\n' } });
    const p = await s.fake.createPipeline(project, [{ name: 'on-pool', script: [...WHERE, 'echo pool-job-ran', 'test -f README.md'] }]);
    const job = await waitFinished(s.fake, p.jobIds[0]!);
    expect(job.state).toBe('success');
    expect(job.traceText).toContain('pool-job-ran');
    expect(job.traceText).toContain('Job succeeded');
    expectRanOn(job, a);

    // One use per machine: the used machine goes, and the pool is back to one idle machine, a new one.
    await waitGone(r, a);
    const b = await waitOneIdle(s, r, [a.id]);
    expect(b.id).not.toBe(a.id);
    // The removal is logged with its named reason.
    const removals = s.log().split('\n').filter((l) => l.includes('"removing machine"')).map((l) => JSON.parse(l) as { machine?: string; reason?: string });
    expect(removals.filter((x) => x.machine === a.id).map((x) => x.reason)).toEqual(['max_uses']);

    expect(await s.stop()).toBe(0);
    expect(hostMachines(r)).toEqual([]);
    expect(processesOf(r)).toEqual([]);
    expectClean(s, [job]);
  }, 90_000);

  it('maxUseCount 2: two jobs in a row share a machine, the third gets a new one; the reused machine goes after its second job', async () => {
    // maxMachines 1: while a job runs, the pool cannot boot a second machine, so the next job must take the returned one.
    const { stack: s, root: r } = await startPoolStack({ idleCount: 1, maxUseCount: 2, maxMachines: 1 });
    const a = await waitOneIdle(s, r);
    const project = await s.fake.createProject({ path: 'e2e/pool-reuse', files: { 'README.md': 'e2e\n' } });
    const run = async (name: string) => {
      const p = await s.fake.createPipeline(project, [{ name, script: [...WHERE, `echo ${name}-ran`] }]);
      const job = await waitFinished(s.fake, p.jobIds[0]!);
      expect(job.state).toBe('success');
      expect(job.traceText).toContain(`${name}-ran`);
      return job;
    };

    const first = await run('first');
    expectRanOn(first, a);
    const second = await run('second');
    expectRanOn(second, a);
    expect(ranIn(second).project).toBe(ranIn(first).project);

    await waitGone(r, a);
    const b = await waitOneIdle(s, r, [a.id]);
    const third = await run('third');
    expectRanOn(third, b);

    expect(await s.stop()).toBe(0);
    expect(hostMachines(r)).toEqual([]);
    expect(processesOf(r)).toEqual([]);
    expectClean(s, [first, second, third]);
  }, 120_000);

  it('on SIGTERM with an idle pool and no job, exits 0 and leaves no machine or sshd behind', async () => {
    const { stack: s, root: r } = await startPoolStack({ idleCount: 2, maxUseCount: 1 });
    const machines = await waitFor(
      'two idle pool machines',
      () => {
        const ms = hostMachines(r);
        return ms.length === 2 && ms.every((m) => isIdle(m) && loggedIdle(s).has(m.id)) ? ms : undefined;
      },
      () => ({ machines: hostMachines(r), logTail: s.log().slice(-3000) }),
    );
    expect(await s.stop()).toBe(0);
    expect(s.log()).toMatch(/coordinator stopped/);
    expect(hostMachines(r)).toEqual([]);
    for (const m of machines) expect(processes().some((p) => p.pid === m.pid && p.cmdline.includes(m.dir))).toBe(false);
    expect(processesOf(r)).toEqual([]);
    expectClean(s);
  }, 90_000);

  it('a script failure leaves the machine reusable; an idle machine whose sshd dies is replaced', async () => {
    const { stack: s, root: r } = await startPoolStack({ idleCount: 1, maxUseCount: 2, maxMachines: 1 });
    const a = await waitOneIdle(s, r);
    const project = await s.fake.createProject({ path: 'e2e/pool-fail', files: { 'README.md': 'e2e\n' } });
    const p = await s.fake.createPipeline(project, [{ name: 'fails', script: [...WHERE, 'exit 3'] }]);
    const job = await waitFinished(s.fake, p.jobIds[0]!);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 3 });
    expectRanOn(job, a);

    // Back in the pool: the same machine, alive, its connection held again (and no other machine).
    const back = await waitFor(
      `machine ${a.id} idle again`,
      () => {
        const ms = hostMachines(r);
        return ms.length === 1 && ms[0]!.id === a.id && isIdle(ms[0]!) ? ms[0] : undefined;
      },
      () => ({ machines: hostMachines(r), logTail: s.log().slice(-3000) }),
    );
    expect(back.pid).toBe(a.pid);

    // The machine dies while idle (its sshd and the held session with it): the pool replaces it.
    for (const pid of [a.pid!, ...descendants(processes(), a.pid!).map((x) => x.pid)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone (a session ending as its sshd died) */
      }
    }
    await waitGone(r, a);
    const b = await waitOneIdle(s, r, [a.id]);
    expect(s.log()).toContain('idle machine stopped answering; replacing it');

    // The replacement takes jobs.
    const p2 = await s.fake.createPipeline(project, [{ name: 'after', script: [...WHERE, 'echo after-ran'] }]);
    const after = await waitFinished(s.fake, p2.jobIds[0]!);
    expect(after.state).toBe('success');
    expectRanOn(after, b);

    expect(await s.stop()).toBe(0);
    expect(hostMachines(r)).toEqual([]);
    expect(processesOf(r)).toEqual([]);
    expectClean(s, [job, after]);
  }, 120_000);

  it('metrics: fleetrunner_machines reports the idle machine', async () => {
    const port = await freeLoopbackPort();
    const { stack: s, root: r } = await startPoolStack({ idleCount: 1, maxUseCount: 1 }, { extra: ['metrics:', `  listen: 127.0.0.1:${port}`] });
    await waitOneIdle(s, r);
    // The gauge is refreshed every 5 s: allow one refresh after the pool came up.
    const body = await pollMetrics(port, /^fleetrunner_machines\{executor="local",state="idle"\} 1$/m, 8_000);
    expect(body).toMatch(/^fleetrunner_machines\{executor="local",state="busy"\} 0$/m);
    expect(body).toMatch(/^fleetrunner_machines\{executor="local",state="booting"\} 0$/m);
    // The same listener answers the container health check: the built script, as the image runs it.
    const check = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'dist', 'cli', 'healthcheck.js')], { env: { ...process.env, FLEETRUNNER_HEALTH_URL: `http://127.0.0.1:${port}` }, encoding: 'utf8', timeout: 10_000 });
    expect(check.status).toBe(0);
    expect(check.stdout).toMatch(/^live: yes \(200 \{"status":"ok","phase":"running",.*; ready: yes \(200 /);
    expect(await s.stop()).toBe(0);
    expectClean(s);
  }, 90_000);
});

async function pollMetrics(port: number, want: RegExp, timeoutMs: number): Promise<string> {
  let last = '';
  return waitForAsync(
    `metrics matching ${want}`,
    async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        last = await res.text();
      } catch (e) {
        last = String(e);
      }
      return want.test(last) ? last : undefined;
    },
    () => last.split('\n').filter((l) => l.startsWith('fleetrunner_machines')),
    timeoutMs,
  );
}

async function waitForAsync<T>(what: string, probe: () => Promise<T | undefined>, diag: () => unknown, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(diag(), null, 2)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
