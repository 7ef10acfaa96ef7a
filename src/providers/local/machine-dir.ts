// One local machine = one directory. Its machine.json is this provider's "cloud record": ownership tags,
// address, sshd pid. Listing the root directory rebuilds the fleet after a coordinator restart.

import { chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { OwnershipTags } from '../../core/index.js';

export interface NamespaceRecord {
  /** `ip netns` name. */
  name: string;
  /** Host end of the veth pair (the namespace end dies with the namespace). */
  hostIf: string;
  hostAddr: string;
  nsAddr: string;
  /** Index of the /30 inside 10.213.0.0/16. */
  subnet: number;
}

export interface LocalMachineRecord {
  version: 1;
  id: string;
  tags: OwnershipTags;
  createdAt: number;
  host: string;
  port: number;
  username: string;
  hostPublicKey: string;
  /** sshd pid; absent while the machine is being created. */
  pid?: number;
  netns?: NamespaceRecord;
  /** The machine's own unprivileged user (coordinator running as root); absent: jobs run as `username`
   *  without a user of their own (the coordinator's user). */
  jobUser?: { name: string; uid: number; gid: number };
  /** Where the job-facing directories live when not in the machine dir (see MachineDir). */
  jobDir?: string;
  /** The coordinator's last labels (CapacityProvider.label): idle, or busy with a job id ('' = none). */
  labels?: { state: string; job: string };
}

/** Owner of the job-facing directories. */
export interface DirOwner {
  uid: number;
  gid: number;
}

/**
 * Paths of one machine. The machine dir (`<root>/<id>`) holds its record, sshd config and log, and its keys.
 * The job-facing dirs (builds, cache, tmp, home, and authorized_keys, which sshd reads as the user) live
 * under `jobPath`: the machine dir itself, or, when the job user could not reach that, a directory of its
 * own elsewhere (see LocalProvider).
 *
 * With a job user (uid U, group G), modes and owners are:
 *   <machine>/                 root:G 0710 (root:root 0700 when jobPath is elsewhere)
 *   <machine>/machine.json, sshd_config, sshd.log     root 0600
 *   <machine>/ssh/             root:G 0710 (root 0700 when jobPath is elsewhere)
 *   <machine>/ssh/host_ed25519, client_ed25519        root 0600
 *   <jobPath>/                 root:G 0710
 *   <jobPath>/ssh/authorized_keys                     root:G 0640 (in root:G 0710 ssh/)
 *   <jobPath>/builds           U:G 0755   (a container user must enter it; only G reaches it from the host)
 *   <jobPath>/cache, tmp, home U:G 0700
 * So the job user can enter its machine dir and read its public key, but not list the dir nor read the
 * keys, the record or the sshd log, nor change anything sshd trusts; other job users cannot enter at all.
 */
export class MachineDir {
  readonly jobPath: string;

  constructor(
    readonly root: string,
    readonly id: string,
    jobPath?: string,
  ) {
    this.jobPath = jobPath ?? this.path;
  }

  /** The same machine, with its job-facing dirs at `jobPath` (undefined: in the machine dir). */
  withJobPath(jobPath: string | undefined): MachineDir {
    return new MachineDir(this.root, this.id, jobPath);
  }

  get path(): string {
    return join(this.root, this.id);
  }
  /** True when the job-facing dirs are in the machine dir itself. */
  get jobPathIsMachineDir(): boolean {
    return this.jobPath === this.path;
  }
  get recordFile(): string {
    return join(this.path, 'machine.json');
  }
  get sshdConfig(): string {
    return join(this.path, 'sshd_config');
  }
  get sshdLog(): string {
    return join(this.path, 'sshd.log');
  }
  get hostKey(): string {
    return join(this.path, 'ssh', 'host_ed25519');
  }
  get clientKey(): string {
    return join(this.path, 'ssh', 'client_ed25519');
  }
  get authorizedKeys(): string {
    return join(this.jobPath, 'ssh', 'authorized_keys');
  }
  get buildsDir(): string {
    return join(this.jobPath, 'builds');
  }
  get cacheDir(): string {
    return join(this.jobPath, 'cache');
  }
  /** fleetrunner's records on the machine (ConnectionInfo.stateDir): the job user's, nobody else's. */
  get stateDir(): string {
    return join(this.jobPath, 'state');
  }
  /** $TMPDIR of every session on the machine (executors keep their pid files there). */
  get tmpDir(): string {
    return join(this.jobPath, 'tmp');
  }

  /** $HOME of every session: a fresh machine has an empty home. */
  get homeDir(): string {
    return join(this.jobPath, 'home');
  }

  /** The machine dir alone, private to this process's user (before a job user exists). */
  async makeMachineDir(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o700 });
    await chmod(this.path, 0o700);
    await mkdir(join(this.path, 'ssh'), { mode: 0o700 });
  }

  /** The rest of the layout; with `owner`, the modes and owners of the class comment. */
  async makeLayout(owner?: DirOwner): Promise<void> {
    // Containers see only the builds dir (mounted at the same path); a job image running as another user
    // must be able to enter it, as /builds on an instance. The machine's own dir stays private.
    const jobDirs: Array<[string, number]> = [
      [this.cacheDir, 0o700],
      [this.stateDir, 0o700],
      [this.tmpDir, 0o700],
      [this.homeDir, 0o700],
      [this.buildsDir, 0o755],
    ];
    if (!owner) {
      for (const [d, mode] of jobDirs) await mkdir(d, { recursive: true, mode });
      return;
    }
    // Root-owned, entered through the job user's group: only this machine's user gets past them. (When
    // jobPath is the machine dir, these are the machine dir and its ssh dir.)
    for (const d of [this.jobPath, join(this.jobPath, 'ssh')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      await chown(d, 0, owner.gid);
      await chmod(d, 0o710);
    }
    for (const [d, mode] of jobDirs) {
      await mkdir(d, { mode: 0o700 });
      await chown(d, owner.uid, owner.gid);
      await chmod(d, mode);
    }
  }

  /** The client's public key for sshd; readable by the job user (sshd reads it with the user's rights), never writable. */
  async writeAuthorizedKeys(content: string, owner?: DirOwner): Promise<void> {
    await writeFile(this.authorizedKeys, content, { mode: 0o600 });
    if (owner) {
      await chown(this.authorizedKeys, 0, owner.gid);
      await chmod(this.authorizedKeys, 0o640);
    }
  }

  async writeRecord(record: LocalMachineRecord): Promise<void> {
    const tmp = `${this.recordFile}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 });
    await rename(tmp, this.recordFile);
  }

  /** The record, `undefined` when the directory or file is missing, or 'corrupt'. */
  async readRecord(): Promise<LocalMachineRecord | 'corrupt' | undefined> {
    let text: string;
    try {
      text = await readFile(this.recordFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    try {
      const r = JSON.parse(text) as LocalMachineRecord;
      return r.version === 1 && typeof r.id === 'string' && r.tags ? r : 'corrupt';
    } catch {
      return 'corrupt';
    }
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
    if (!this.jobPathIsMachineDir) await rm(this.jobPath, { recursive: true, force: true });
  }
}

/** Ids of every machine directory under `root` (empty when the root does not exist yet). */
export async function machineIds(root: string): Promise<string[]> {
  try {
    const entries = await readdir(root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
