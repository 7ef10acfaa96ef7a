// Machines that are sshd processes on this host. The filesystem is this provider's cloud: each machine is a
// directory holding its keys, sshd_config and a machine.json record, so a restarted coordinator finds them.

import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

import {
  NotFoundError,
  errorMessage,
  silentLogger,
  systemClock,
  type CapacityProvider,
  type Clock,
  type ConnectionInfo,
  type CreateResult,
  type Logger,
  type Machine,
  type MachineState,
  type OwnershipTags,
} from '../../core/index.js';
import { generateEd25519 } from '../ssh-keys.js';
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
  /** Login user. Default: the user this process runs as. */
  username?: string;
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

export class LocalProvider implements CapacityProvider {
  readonly name = 'local';
  readonly root: string;
  private readonly network: LocalNetwork;
  private readonly bootTimeoutMs: number;
  private readonly terminateGraceMs: number;
  private readonly sshdPath: string;
  private readonly username: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly newId: () => string;
  private readonly reservedSubnets = new Set<number>();

  constructor(o: LocalProviderOptions) {
    this.root = o.root ?? join(tmpdir(), 'fleetrunner-local', o.fleet);
    this.network = o.network ?? 'loopback';
    this.bootTimeoutMs = o.bootTimeoutMs ?? 30_000;
    this.terminateGraceMs = o.terminateGraceMs ?? 3_000;
    this.sshdPath = o.sshdPath ?? '/usr/sbin/sshd';
    this.username = o.username ?? userInfo().username;
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
    const m: Machine = { id: rec.id, executor: t.executor, state, createdAt: rec.createdAt, tags: { ...t } };
    if (state === 'running') m.connection = await this.connectionOf(dir, rec);
    return m;
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

  private dirOf(id: string): MachineDir | undefined {
    return SAFE_ID.test(id) ? new MachineDir(this.root, id) : undefined;
  }

  private async statusOf(dir: MachineDir, rec: LocalMachineRecord): Promise<LocalStatus> {
    if (rec.pid === undefined) return 'creating';
    return (await isProcessAlive(rec.pid, dir.sshdConfig)) ? 'sshd-alive' : 'sshd-gone';
  }

  private async connectionOf(dir: MachineDir, rec: LocalMachineRecord): Promise<ConnectionInfo> {
    return {
      host: rec.host,
      port: rec.port,
      username: rec.username,
      privateKey: await readFile(dir.clientKey, 'utf8'),
      hostPublicKey: rec.hostPublicKey,
      buildsDir: dir.buildsDir,
      cacheDir: dir.cacheDir,
    };
  }

  /** Creation is a pipeline of steps, undone in reverse when one fails. */
  private async createOne(tags: OwnershipTags): Promise<Machine> {
    const id = this.newId();
    const dir = this.dirOf(id);
    if (!dir) throw new Error(`invalid machine id: ${id}`);
    const log = this.log.child({ machine: id });
    const undo: Array<() => Promise<unknown>> = [];
    try {
      await ensurePrivsepDir();
      await dir.makeLayout();
      undo.push(() => dir.remove());

      const hostKeys = generateEd25519(`fleetrunner-host-${id}`);
      const clientKeys = generateEd25519(`fleetrunner-${id}`);
      await writeFile(dir.hostKey, hostKeys.private, { mode: 0o600 });
      await writeFile(dir.clientKey, clientKeys.private, { mode: 0o600 });
      await writeFile(dir.authorizedKeys, `${clientKeys.public}\n`, { mode: 0o600 });

      const rec: LocalMachineRecord = {
        version: 1,
        id,
        tags: { ...tags },
        createdAt: this.clock.now(),
        host: '127.0.0.1',
        port: 0,
        username: this.username,
        hostPublicKey: hostKeys.public,
      };
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

  /** Stops the sshd, its sessions and every job process (see machine-processes.ts), then removes it all. */
  private async terminateOne(id: string): Promise<void> {
    const dir = this.dirOf(id);
    if (!dir) return; // never ours: not-found is success
    const rec = await dir.readRecord();
    const known = rec === 'corrupt' ? undefined : rec;
    await killMachineProcesses(dir, known, this.terminateGraceMs, this.clock);
    if (known?.netns) {
      await deleteNamespace(known.netns);
      this.reservedSubnets.delete(known.netns.subnet);
    }
    await dir.remove();
    if (rec) this.log.info({ machine: id }, 'local machine terminated');
  }
}
