// A secret in one file, mode 600, replaced atomically (write beside it, then rename): for coordinators on a
// host that keeps its disk. A Fargate task loses it at every start; there the SSM store is used.

import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SecretStore } from '../core/secret-store.js';

export class FileSecretStore implements SecretStore {
  readonly where: string;

  constructor(private readonly path: string) {
    this.where = `file:${path}`;
  }

  async get(): Promise<string | undefined> {
    try {
      return await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async put(value: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, value, { mode: 0o600 });
    await rename(tmp, this.path);
  }

  async delete(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
