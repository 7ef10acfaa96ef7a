// What stands in for "machines ready at once" in the benches: one real sshd on 127.0.0.1 (this host's
// OpenSSH, the local provider's sshd_config plus room for many connections), and a CapacityProvider whose
// machines are slices of it: each has its own builds, cache and state directories and is ready the moment it
// is created (no boot, no process of its own), so what is measured is the coordinator, SSH and the job.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { systemClock } from '../../dist/core/clock.js';
import { generateEd25519 } from '../../dist/providers/ssh-keys.js';
import { renderSshdConfig } from '../../dist/providers/local/sshd-config.js';
import { ensurePrivsepDir, freeLoopbackPort, startSshd, waitForSshAnswer } from '../../dist/providers/local/sshd-process.js';

/** Starts one sshd under `dir`; returns its ConnectionInfo (without the per-slice directories) and a stop. */
export async function startSharedSshd(dir, { maxStartups = 200 } = {}) {
  mkdirSync(join(dir, 'home'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const host = generateEd25519('bench-host');
  const client = generateEd25519('bench-client');
  const port = await freeLoopbackPort();
  writeFileSync(join(dir, 'ssh_host_ed25519_key'), host.private, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), `${client.public}\n`, { mode: 0o600 });
  const username = userInfo().username;
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    renderSshdConfig({
      listenAddress: '127.0.0.1', port, hostKeyFile: join(dir, 'ssh_host_ed25519_key'), authorizedKeysFile: join(dir, 'authorized_keys'),
      username, machineId: 'bench-shared', tmpDir: join(dir, 'tmp'), homeDir: join(dir, 'home'),
    }),
    { mode: 0o600 },
  );
  // Many machines on one sshd: let connections in together, and many channels on each.
  appendFileSync(config, `MaxStartups ${maxStartups}\nMaxSessions 1000\n`);
  // Every running stage's tail holds an inotify instance, all as one user here (on EC2, one job per
  // machine): past the usual 128, tail falls back to polling its file once a second.
  const restoreInotify = raiseInotifyInstances(4096);
  await ensurePrivsepDir();
  // Each connection served by a fork of the listener (-r): a new sshd per connection is the machines' cost,
  // not the coordinator's, and on one host it halved the handshakes a second hundreds of machines get.
  const pid = await startSshd({ sshdPath: '/usr/sbin/sshd', configFile: config, logFile: join(dir, 'sshd.log'), noReexec: true });
  // The machines' side (sshd, its sessions, the jobs' shells): on EC2 each machine has CPUs of its own;
  // here hundreds of process starts a second would take the coordinator's. So they run in a cgroup of their
  // own, which a bench can give a CPU quota (user and kernel time both: a lower priority would not keep
  // their kernel time off the coordinator's CPUs, and starves sshd's handshakes past the client's attempt
  // timeout when the machines must keep up). Unlimited, the group weighs as much as many processes.
  const cgroup = cpuGroup(pid);
  const limitCpu = (cpus) => {
    if (!cgroup) return `the machines' processes unlimited (no cgroup CPU limit can be set on this host)`;
    const period = 100_000;
    const quota = cpus === undefined ? undefined : Math.round(cpus * period);
    try {
      if (cgroup.v2) {
        writeFileSync(join(cgroup.dir, 'cpu.max'), `${quota ?? 'max'} ${period}`);
        writeFileSync(join(cgroup.dir, 'cpu.weight'), quota === undefined ? '1000' : '100');
      } else {
        writeFileSync(join(cgroup.dir, 'cpu.cfs_quota_us'), String(quota ?? -1));
        writeFileSync(join(cgroup.dir, 'cpu.shares'), quota === undefined ? '10240' : '1024');
      }
    } catch (e) {
      return `the machines' processes unlimited (their cgroup's CPU limit could not be set: ${e.code ?? e.message})`;
    }
    return cpus === undefined ? `the machines' processes unlimited` : `the machines' processes limited to ${cpus} CPU (a cgroup quota)`;
  };
  limitCpu(undefined);
  await waitForSshAnswer({ host: '127.0.0.1', port, deadline: Date.now() + 10_000, clock: systemClock, stillRunning: async () => true });
  const connection = { host: '127.0.0.1', port, username, privateKey: client.private, hostPublicKey: host.public };
  return {
    pid,
    connection,
    /** Limits the machines' processes to `cpus` CPUs from now on (undefined: no limit); says what was done. */
    limitCpu,
    stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
      restoreInotify();
      if (cgroup) setTimeout(() => rmdirSync(cgroup.dir), 2000).unref?.();
    },
  };
}

/** Raises fs.inotify.max_user_instances to at least `n` when this host lets us (root); returns the undo. */
function raiseInotifyInstances(n) {
  const f = '/proc/sys/fs/inotify/max_user_instances';
  try {
    const was = readFileSync(f, 'utf8').trim();
    if (Number(was) >= n) return () => undefined;
    writeFileSync(f, String(n));
    return () => {
      try {
        writeFileSync(f, was);
      } catch {
        // left raised
      }
    };
  } catch {
    return () => undefined;
  }
}

/** Moves `pid` (and so every process it starts) into a new cgroup whose CPU quota limitCpu sets: cgroup v2,
 *  or v1's cpu controller, whichever this host has. Undefined when neither can be used (the bench says so). */
function cpuGroup(pid) {
  const tries = [
    { v2: true, probe: '/sys/fs/cgroup/cgroup.controllers', dir: `/sys/fs/cgroup/fr-bench-${pid}` },
    { v2: false, probe: '/sys/fs/cgroup/cpu/cpu.cfs_quota_us', dir: `/sys/fs/cgroup/cpu/fr-bench-${pid}` },
  ];
  for (const t of tries) {
    try {
      if (!existsSync(t.probe)) continue;
      mkdirSync(t.dir);
      try {
        writeFileSync(join(t.dir, 'cgroup.procs'), String(pid));
        return { v2: t.v2, dir: t.dir };
      } catch {
        rmdirSync(t.dir);
      }
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** Machines that are slices of one sshd (see above). With `readyEveryMs`, machines made together come up
 *  one after another, that far apart (as booting instances do), so the pool's connections are not all
 *  asked of the one sshd in the same second (it cannot complete hundreds of handshakes at once on 2 CPUs;
 *  on EC2 each machine answers its own). */
export class SlicedProvider {
  name = 'bench-slices';
  machines = new Map();
  seq = 0;
  nextReadyAt = 0;
  constructor(connection, root, { readyEveryMs = 0 } = {}) {
    this.connection = connection;
    this.root = root;
    this.readyEveryMs = readyEveryMs;
  }
  async create(count, tags) {
    const machines = [];
    for (let i = 0; i < count; i++) {
      const id = `slice-${++this.seq}`;
      const m = { id, executor: tags.executor, state: 'running', createdAt: Date.now(), tags: { ...tags } };
      this.machines.set(id, m);
      machines.push(m);
    }
    return { machines, errors: [] };
  }
  async list(tags) {
    return [...this.machines.values()].filter((m) => m.tags.fleet === tags.fleet && (!tags.executor || m.tags.executor === tags.executor));
  }
  async waitReady(machine) {
    if (this.readyEveryMs) {
      this.nextReadyAt = Math.max(Date.now(), this.nextReadyAt) + this.readyEveryMs;
      await new Promise((r) => setTimeout(r, this.nextReadyAt - Date.now()));
    }
    const d = join(this.root, machine.id);
    for (const sub of ['builds', 'cache', 'state']) mkdirSync(join(d, sub), { recursive: true, mode: 0o700 });
    return { ...this.connection, buildsDir: join(d, 'builds'), cacheDir: join(d, 'cache'), stateDir: join(d, 'state') };
  }
  async terminate(ids) {
    // Removing a slice is the machine's own teardown: done by a process of its own, so its CPU (and its
    // time: a slice holds the job's files) is not counted as the coordinator's, as on a real provider.
    await Promise.all(
      ids.map((id) => {
        this.machines.delete(id);
        return new Promise((resolve) => spawn('rm', ['-rf', join(this.root, id)], { stdio: 'ignore' }).on('close', resolve).on('error', resolve));
      }),
    );
    return { errors: [] };
  }
  async label() {}
  async shutdown() {}
}

/** Ends every process still running from a bench directory (a stage started under it, a session of its
 *  sshd): each runs in a process group of its own (setsid), which is what is signalled. Only processes
 *  whose command line names `dir` are touched. */
export async function killLeftovers(dir) {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' });
  const groups = new Set();
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (m && m[3].includes(dir) && Number(m[1]) !== process.pid) groups.add(Number(m[2]));
  }
  for (const g of groups) {
    if (g <= 1 || g === process.pid) continue;
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  return groups.size;
}
