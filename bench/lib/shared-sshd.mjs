// What stands in for "machines ready at once" in the benches: one real sshd on 127.0.0.1 (this host's
// OpenSSH, the local provider's sshd_config plus room for many connections), and a CapacityProvider whose
// machines are slices of it: each has its own builds, cache and state directories and is ready the moment it
// is created (no boot, no process of its own), so what is measured is the coordinator, SSH and the job.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
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
  await ensurePrivsepDir();
  const pid = await startSshd({ sshdPath: '/usr/sbin/sshd', configFile: config, logFile: join(dir, 'sshd.log') });
  await waitForSshAnswer({ host: '127.0.0.1', port, deadline: Date.now() + 10_000, clock: systemClock, stillRunning: async () => true });
  const connection = { host: '127.0.0.1', port, username, privateKey: client.private, hostPublicKey: host.public };
  return {
    pid,
    connection,
    stop() {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    },
  };
}

/** Machines that are slices of one sshd (see above). */
export class SlicedProvider {
  name = 'bench-slices';
  machines = new Map();
  seq = 0;
  constructor(connection, root) {
    this.connection = connection;
    this.root = root;
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
