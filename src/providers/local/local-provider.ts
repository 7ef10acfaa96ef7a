// Machines that are sshd processes on this host. The filesystem is this provider's cloud: each machine is a
// directory holding its keys, sshd_config and a machine.json record, so a restarted coordinator finds them.
//
// Run as root, the provider gives every machine a user of its own (job-users.ts) and sessions log in as
// that user: jobs cannot read the coordinator's environment (/proc/<pid>/environ is owner-only), its state
// dir, the machine's keys, or another machine's files. Run as anyone else, jobs run as that user and can
// read all of it (README: "Local machines").

import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { basename, dirname, join, parse, resolve } from 'node:path';

import {
  NotFoundError,
  checkMachineLabels,
  errorMessage,
  machineLabelsOf,
  silentLogger,
  systemClock,
  type CapacityProvider,
  type Clock,
  type ConnectionInfo,
  type CreateResult,
  type Logger,
  type Machine,
  type MachineLabels,
  type MachineState,
  type OwnershipTags,
} from '../../core/index.js';
import { generateEd25519 } from '../ssh-keys.js';
import {
  DEFAULT_JOB_USER_PREFIX,
  createJobUser,
  deleteJobUser,
  jobUserComment,
  jobUserName,
  killAllOfUser,
  lookupUser,
  markedJobUsers,
  removeFilesOfUser,
  runningAsRoot,
  type JobUser,
} from './job-users.js';
import { MachineDir, machineIds, type LocalMachineRecord } from './machine-dir.js';
import { createNamespace, deleteNamespace } from './netns.js';
import { killMachineProcesses } from './machine-processes.js';
import { isProcessAlive, killProcesses, processExists } from './processes.js';
import { renderSshdConfig } from './sshd-config.js';
import { ensurePrivsepDir, freeLoopbackPort, logTail, startSshd, waitForSshAnswer } from './sshd-process.js';

export type LocalNetwork = 'loopback' | 'namespace';

export interface LocalProviderOptions {
  /** Names the default root directory. */
  fleet: string;
  /** Where machine directories live. Default: os.tmpdir()/fleetrunner-local/<fleet>. */
  root?: string;
  /** 'namespace': each machine in its own network namespace (needs root). Default 'loopback'. */
  network?: LocalNetwork;
  /** Bound for create's start-up check and for waitReady. Default 30 s. */
  bootTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL on terminate. Default 3 s. */
  terminateGraceMs?: number;
  /** Absolute path (sshd re-execs itself). Default /usr/sbin/sshd. */
  sshdPath?: string;
  /** Login user of every machine. Default: when this process runs as root, a user of its own per machine
   *  (see jobUser); otherwise the user this process runs as. Setting it turns per-machine users off. */
  username?: string;
  /** Base name of the per-machine users (`<jobUser>-<10 hex>`). Default 'fleetrunner-job'. */
  jobUser?: string;
  /** Put each machine's user into the host's `docker` group, for the docker style (which runs `docker`
   *  on the machine). That group is root-equivalent on the host. Default false. */
  dockerGroup?: boolean;
  clock?: Clock;
  logger?: Logger;
  newId?: () => string;
}

/** What the host says about a machine, before it is mapped onto MachineState. */
type LocalStatus = 'creating' | 'sshd-alive' | 'sshd-gone';

function toMachineState(status: LocalStatus): MachineState {
  switch (status) {
    case 'creating':
      return 'pending';
    case 'sshd-alive':
      return 'running';
    case 'sshd-gone':
      return 'terminated';
  }
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PORT_ATTEMPTS = 3;

/** True when a user who owns nothing on the way can enter `dir`: every directory from / down to it may be
 *  searched by others, and none can be renamed away by them (writable by others only with the sticky bit). */
async function othersCanReach(dir: string): Promise<boolean> {
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.push(d);
    if (d === parse(d).root) break;
  }
  for (const d of chain) {
    const st = await lstat(d).catch(() => undefined);
    if (!st || !st.isDirectory()) return false;
    if ((st.mode & 0o001) === 0) return false;
    if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0) return false;
  }
  return true;
}

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

export class LocalProvider implements CapacityProvider {
  readonly name = 'local';
  readonly root: string;
  /** The root is <tmpdir>/fleetrunner-local/<fleet>: its parent is ours too. */
  private readonly defaultRoot: boolean;
  private readonly network: LocalNetwork;
  private readonly bootTimeoutMs: number;
  private readonly terminateGraceMs: number;
  private readonly sshdPath: string;
  private readonly username: string;
  /** Base name of per-machine users; undefined: no users of their own (not root, or `username` set). */
  private readonly jobUserPrefix: string | undefined;
  private readonly dockerGroup: boolean;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly reservedSubnets = new Set<number>();
  /** Record updates of labels, one at a time per machine (read, change, write back). */
  private readonly labelling = new Map<string, Promise<void>>();
  private nextSweep = 0;

  constructor(o: LocalProviderOptions) {
    this.root = resolve(o.root ?? join(tmpdir(), 'fleetrunner-local', o.fleet));
    this.defaultRoot = o.root === undefined;
    this.network = o.network ?? 'loopback';
    this.bootTimeoutMs = o.bootTimeoutMs ?? 30_000;
    this.terminateGraceMs = o.terminateGraceMs ?? 3_000;
    this.sshdPath = o.sshdPath ?? '/usr/sbin/sshd';
    this.username = o.username ?? userInfo().username;
    this.jobUserPrefix = o.username === undefined && runningAsRoot() ? (o.jobUser ?? DEFAULT_JOB_USER_PREFIX) : undefined;
    if (this.jobUserPrefix !== undefined) jobUserName(this.jobUserPrefix, ''); // validates the prefix now
    this.dockerGroup = o.dockerGroup ?? false;
    this.clock = o.clock ?? systemClock;
    this.log = (o.logger ?? silentLogger).child({ provider: 'local' });
    this.newId = o.newId ?? (() => `local-${randomBytes(4).toString('hex')}`);
  }

  async create(count: number, tags: OwnershipTags): Promise<CreateResult> {
    const settled = await Promise.allSettled(Array.from({ length: count }, () => this.createOne(tags)));
    const result: CreateResult = { machines: [], errors: [] };
    for (const s of settled) {
      if (s.status === 'fulfilled') result.machines.push(s.value);
      else result.errors.push(s.reason instanceof Error ? s.reason : new Error(String(s.reason)));
    }
    return result;
  }

  async list(filter: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine[]> {
    await this.sweepOrphans();
    const machines: Machine[] = [];
    for (const id of await machineIds(this.root)) {
      try {
        const m = await this.describe(new MachineDir(this.root, id), filter);
        if (m) machines.push(m);
      } catch (e) {
        // Most likely terminated while we looked: the next list will not see it either.
        this.log.warn({ machine: id, err: errorMessage(e) }, 'machine not listed');
      }
    }
    return machines;
  }

  private async describe(dir: MachineDir, filter: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine | undefined> {
    const rec = await dir.readRecord();
    if (rec === undefined) return undefined;
    if (rec === 'corrupt') {
      this.log.warn({ machine: dir.id }, 'unreadable machine.json: machine not listed');
      return undefined;
    }
    const t = rec.tags;
    if (t.fleet !== filter.fleet) return undefined;
    if (filter.executor !== undefined && t.executor !== filter.executor) return undefined;
    if (filter.coordinator !== undefined && t.coordinator !== filter.coordinator) return undefined;
    const state = toMachineState(await this.statusOf(dir, rec));
    const labels = machineLabelsOf(rec.labels?.state, rec.labels?.job);
    const m: Machine = { id: rec.id, executor: t.executor, state, createdAt: rec.createdAt, tags: { ...t }, ...(labels && { labels }) };
    if (state === 'running') m.connection = await this.connectionOf(dir, rec);
    return m;
  }

  /** Keeps `labels` in the machine's machine.json, where `list` (this process's or a successor's) reads them. */
  async label(id: string, labels: MachineLabels): Promise<void> {
    checkMachineLabels(labels);
    const dir = this.dirOf(id);
    if (!dir) throw new NotFoundError(`local machine ${id} not found: its labels were not stored`);
    const write = async () => {
      const rec = await dir.readRecord();
      if (rec === undefined || rec === 'corrupt') throw new NotFoundError(`local machine ${id} ${rec === 'corrupt' ? 'has an unreadable machine.json' : 'not found'}: its labels were not stored`);
      rec.labels = labels.state === 'busy' ? { state: 'busy', job: labels.job } : { state: 'idle', job: '' };
      await dir.writeRecord(rec);
    };
    const done = (this.labelling.get(id) ?? Promise.resolve()).then(write, write);
    const tail = done.catch(() => undefined);
    this.labelling.set(id, tail);
    void tail.then(() => this.labelling.get(id) === tail && this.labelling.delete(id));
    await done;
  }

  async waitReady(machine: Machine, signal?: AbortSignal): Promise<ConnectionInfo> {
    const dir = this.dirOf(machine.id);
    const rec = dir && (await dir.readRecord());
    if (!dir || rec === undefined || rec === 'corrupt') throw new NotFoundError(`local machine ${machine.id} not found`);
    const pid = rec.pid;
    if (pid === undefined) throw new Error(`local machine ${machine.id} has no sshd yet`);
    const waiting: Parameters<typeof waitForSshAnswer>[0] = {
      host: rec.host,
      port: rec.port,
      deadline: this.clock.now() + this.bootTimeoutMs,
      clock: this.clock,
      stillRunning: () => isProcessAlive(pid, dir.sshdConfig),
    };
    if (signal) waiting.signal = signal;
    await waitForSshAnswer(waiting);
    return this.connectionOf(dir, rec);
  }

  async terminate(ids: string[]): Promise<{ errors: Error[] }> {
    const settled = await Promise.allSettled(ids.map((id) => this.terminateOne(id)));
    const errors: Error[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'rejected') errors.push(new Error(`terminate ${ids[i]}: ${errorMessage(s.reason)}`, { cause: s.reason }));
    });
    return { errors };
  }

  async shutdown(): Promise<void> {
    // No background work: machines are left running on purpose (the fleet decides their fate).
  }

  /**
   * Job users whose machine directory is gone: a machine removed without terminate (its root deleted by
   * hand or by a test's clean-up, a crash half-way through). Their processes are killed (the sshd too, by
   * its config path), their files in the shared temp dirs removed, and the account deleted, so that such
   * accounts neither pile up nor keep running. Any fleet's, on this host; at most once a minute.
   */
  private async sweepOrphans(): Promise<void> {
    if (this.jobUserPrefix === undefined || this.clock.now() < this.nextSweep) return;
    this.nextSweep = this.clock.now() + 60_000;
    for (const u of await markedJobUsers()) {
      try {
        if (await lstat(u.machinePath).then(() => true, () => false)) continue;
        const current = await lookupUser(u.name);
        if (!current || current.uid !== u.uid || current.comment !== jobUserComment(u.machinePath)) continue;
        const jobPath = dirname(u.home);
        const outside = jobPath !== u.machinePath && dirname(jobPath) === this.jobBase();
        const dir = new MachineDir(dirname(u.machinePath), basename(u.machinePath), outside ? jobPath : undefined);
        await killMachineProcesses(dir, undefined, 0, this.clock, current);
        await removeFilesOfUser(current);
        await deleteJobUser(current.name);
        if (outside) await rm(jobPath, { recursive: true, force: true });
        this.log.warn({ user: u.name, machineDir: u.machinePath }, 'removed the user of a local machine whose directory is gone');
      } catch (e) {
        this.log.warn({ user: u.name, err: errorMessage(e) }, 'could not remove a left-over job user');
      }
    }
  }

  private dirOf(id: string): MachineDir | undefined {
    return SAFE_ID.test(id) ? new MachineDir(this.root, id) : undefined;
  }

  private async statusOf(dir: MachineDir, rec: LocalMachineRecord): Promise<LocalStatus> {
    if (rec.pid === undefined) return 'creating';
    return (await isProcessAlive(rec.pid, dir.sshdConfig)) ? 'sshd-alive' : 'sshd-gone';
  }

  private async connectionOf(machineDir: MachineDir, rec: LocalMachineRecord): Promise<ConnectionInfo> {
    const dir = machineDir.withJobPath(rec.jobDir);
    return {
      host: rec.host,
      port: rec.port,
      username: rec.username,
      privateKey: await readFile(dir.clientKey, 'utf8'),
      hostPublicKey: rec.hostPublicKey,
      buildsDir: dir.buildsDir,
      cacheDir: dir.cacheDir,
      stateDir: dir.stateDir,
    };
  }

  /** Creation is a pipeline of steps, undone in reverse when one fails. */
  private async createOne(tags: OwnershipTags): Promise<Machine> {
    const id = this.newId();
    const machineDir = this.dirOf(id);
    if (!machineDir) throw new Error(`invalid machine id: ${id}`);
    const log = this.log.child({ machine: id });
    const undo: Array<() => Promise<unknown>> = [];
    try {
      await ensurePrivsepDir();
      const prefix = this.jobUserPrefix;
      const jobPath = prefix !== undefined ? await this.jobPathFor(id) : undefined;
      const dir = machineDir.withJobPath(jobPath);
      await dir.makeMachineDir();
      undo.push(() => dir.remove());
      let user: JobUser | undefined;
      if (prefix !== undefined) {
        const created = await createJobUser({
          name: jobUserName(prefix, dir.path),
          home: dir.homeDir,
          comment: jobUserComment(dir.path),
          docker: this.dockerGroup,
        });
        user = created;
        if (this.dockerGroup && !created.docker) log.warn({ user: created.name }, 'the host has no docker group: the job user cannot use docker');
        undo.push(() => killAllOfUser(created).then(() => deleteJobUser(created.name)));
      }
      await dir.makeLayout(user);

      const hostKeys = generateEd25519(`fleetrunner-host-${id}`);
      const clientKeys = generateEd25519(`fleetrunner-${id}`);
      await writeFile(dir.hostKey, hostKeys.private, { mode: 0o600 });
      await writeFile(dir.clientKey, clientKeys.private, { mode: 0o600 });
      await dir.writeAuthorizedKeys(`${clientKeys.public}\n`, user);

      const rec: LocalMachineRecord = {
        version: 1,
        id,
        tags: { ...tags },
        createdAt: this.clock.now(),
        host: '127.0.0.1',
        port: 0,
        username: user?.name ?? this.username,
        hostPublicKey: hostKeys.public,
      };
      if (user) rec.jobUser = { name: user.name, uid: user.uid, gid: user.gid };
      if (!dir.jobPathIsMachineDir) rec.jobDir = dir.jobPath;
      if (this.network === 'namespace') {
        rec.netns = await createNamespace(id, this.reservedSubnets);
        const ns = rec.netns;
        undo.push(() => deleteNamespace(ns).finally(() => this.reservedSubnets.delete(ns.subnet)));
        rec.host = ns.nsAddr;
        rec.port = 22;
      }
      await dir.writeRecord(rec);

      for (let attempt = 1; ; attempt++) {
        if (!rec.netns) rec.port = await freeLoopbackPort();
        const pid = await this.launch(dir, rec);
        const kill = () => killProcesses([pid], 1000, this.clock);
        try {
          await waitForSshAnswer({
            host: rec.host,
            port: rec.port,
            deadline: this.clock.now() + this.bootTimeoutMs,
            clock: this.clock,
            // We spawned it ourselves: existence is enough (its command line changes while `ip netns exec` execs).
            stillRunning: () => processExists(pid),
          });
          undo.push(kill);
          break;
        } catch (e) {
          await kill();
          const tail = await logTail(dir.sshdLog);
          const portTaken = /Address already in use|Bind to port/.test(tail);
          if (portTaken && !rec.netns && attempt < PORT_ATTEMPTS) {
            log.debug({ port: rec.port }, 'port taken, trying another');
            continue;
          }
          throw new Error(`sshd did not start: ${errorMessage(e)}${tail ? ` (sshd: ${tail})` : ''}`, { cause: e });
        }
      }
      log.info({ host: rec.host, port: rec.port, pid: rec.pid }, 'local machine created');
      const m: Machine = { id, executor: tags.executor, state: 'running', createdAt: rec.createdAt, tags: { ...tags } };
      m.connection = await this.connectionOf(dir, rec);
      return m;
    } catch (e) {
      for (const step of undo.reverse()) await step().catch((err) => log.warn({ err: errorMessage(err) }, 'undo failed'));
      throw e;
    }
  }

  /**
   * Where the job-facing dirs of machine `id` go: undefined for the machine dir itself, which is the case
   * whenever a job user can reach it. The root is made enterable (not listable) by others; when a directory
   * above it is private (a root under a 0700 temp dir or a home), a directory of the machine's own under
   * <tmpdir>/fleetrunner-local-jobs is used instead, so that nothing above the root has to be opened up.
   */
  private async jobPathFor(id: string): Promise<string | undefined> {
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    if (this.defaultRoot) await chmod(dirname(this.root), 0o711);
    await chmod(this.root, 0o711);
    const real = await realpath(this.root);
    if (await othersCanReach(dirname(real))) return undefined;
    const base = this.jobBase();
    await mkdir(base, { mode: 0o711 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const st = await lstat(base);
    if (!st.isDirectory() || st.uid !== 0) throw new Error(`${base} is not a directory owned by root: refusing to put job directories there`);
    await chmod(base, 0o711);
    if (!(await othersCanReach(base))) {
      throw new Error(`job users can reach neither ${this.root} nor ${base}: make a parent directory searchable (o+x) or set local.root`);
    }
    this.log.debug({ root: this.root, base }, 'a parent of the root is private: job directories go elsewhere');
    return join(base, `${shortHash(real)}-${id}`);
  }

  private jobBase(): string {
    return join(tmpdir(), 'fleetrunner-local-jobs');
  }

  private async launch(dir: MachineDir, rec: LocalMachineRecord): Promise<number> {
    await writeFile(
      dir.sshdConfig,
      renderSshdConfig({
        listenAddress: rec.host,
        port: rec.port,
        hostKeyFile: dir.hostKey,
        authorizedKeysFile: dir.authorizedKeys,
        username: rec.username,
        machineId: rec.id,
        tmpDir: dir.tmpDir,
        homeDir: dir.homeDir,
      }),
      { mode: 0o600 },
    );
    const launch: Parameters<typeof startSshd>[0] = { sshdPath: this.sshdPath, configFile: dir.sshdConfig, logFile: dir.sshdLog };
    if (rec.netns) launch.netns = rec.netns.name;
    rec.pid = await startSshd(launch);
    await dir.writeRecord(rec);
    return rec.pid;
  }

  /** Stops the sshd, its sessions and every job process (see machine-processes.ts), deletes the machine's
   *  user and what it left in the shared temp dirs, then removes it all. */
  private async terminateOne(id: string): Promise<void> {
    const machineDir = this.dirOf(id);
    if (!machineDir) return; // never ours: not-found is success
    const rec = await machineDir.readRecord();
    const known = rec === 'corrupt' ? undefined : rec;
    const dir = machineDir.withJobPath(known?.jobDir);
    // The user's name, from the record or (record lost) derived as at creation; its uid as it is now. An
    // account not marked as this machine's is left alone.
    const userName = known ? known.jobUser?.name : this.jobUserPrefix !== undefined ? jobUserName(this.jobUserPrefix, dir.path) : undefined;
    const account = userName !== undefined ? await lookupUser(userName) : undefined;
    const ours = account !== undefined && account.comment === jobUserComment(dir.path) && account.uid > 0;
    if (account && !ours) this.log.warn({ machine: id, user: account.name }, 'user is not marked as this machine\'s: left alone');
    const user = ours ? account : undefined;
    await killMachineProcesses(dir, known, this.terminateGraceMs, this.clock, user);
    if (user) {
      await removeFilesOfUser(user);
      await deleteJobUser(user.name);
    }
    if (known?.netns) {
      await deleteNamespace(known.netns);
      this.reservedSubnets.delete(known.netns.subnet);
    }
    await dir.remove();
    if (!known && this.jobUserPrefix !== undefined) {
      // A job dir outside the root that a lost record would have named.
      const real = await realpath(this.root).catch(() => this.root);
      await rm(join(this.jobBase(), `${shortHash(real)}-${id}`), { recursive: true, force: true });
    }
    if (rec) this.log.info({ machine: id }, 'local machine terminated');
  }
}
