// One local machine = one directory. Its machine.json is this provider's "cloud record": ownership tags,
// address, sshd pid. Listing the root directory rebuilds the fleet after a coordinator restart.

import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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
}

/** Paths inside one machine directory. */
export class MachineDir {
  constructor(
    readonly root: string,
    readonly id: string,
  ) {}

  get path(): string {
    return join(this.root, this.id);
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
    return join(this.path, 'ssh', 'authorized_keys');
  }
  get buildsDir(): string {
    return join(this.path, 'builds');
  }
  get cacheDir(): string {
    return join(this.path, 'cache');
  }
  /** $TMPDIR of every session on the machine (executors keep their pid files there). */
  get tmpDir(): string {
    return join(this.path, 'tmp');
  }

  /** $HOME of every session: a fresh machine has an empty home. */
  get homeDir(): string {
    return join(this.path, 'home');
  }

  async makeLayout(): Promise<void> {
    await mkdir(this.path, { recursive: true, mode: 0o700 });
    await Promise.all(
      [join(this.path, 'ssh'), this.cacheDir, this.tmpDir, this.homeDir].map((d) => mkdir(d, { recursive: true, mode: 0o700 })),
    );
    // Containers see only the builds dir (mounted at the same path); a job image running as another user
    // must be able to enter it, as /builds on an instance. The machine's own dir stays private.
    await mkdir(this.buildsDir, { recursive: true, mode: 0o755 });
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
