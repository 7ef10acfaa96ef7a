// The runner manager's system_id (docs/gitlab-protocol.md §1): stable per machine so GitLab keeps one manager record
// for us, sent on verify, jobs/request and DELETE /runners/managers.

import { createHmac, randomInt } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

const SYSTEM_ID = /^[sr]_[0-9a-zA-Z]{12}$/;
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export function isValidSystemId(id: string): boolean {
  return SYSTEM_ID.test(id);
}

/** `s_` + the first 12 hex of HMAC-SHA256(key = machine-id, message = "gitlab-runner"), as gitlab-runner
 *  computes it, so the same host gets the same id. */
export function systemIdFromMachineId(machineId: string): string {
  return 's_' + createHmac('sha256', machineId.trim()).update('gitlab-runner').digest('hex').slice(0, 12);
}

/** `r_` + 12 random alphanumerics, for hosts without a machine-id (containers). */
export function randomSystemId(randomIndex: (max: number) => number = (max) => randomInt(max)): string {
  let s = 'r_';
  for (let i = 0; i < 12; i++) s += ALNUM[randomIndex(ALNUM.length)];
  return s;
}

/** The file operations loadSystemId needs; tests pass an in-memory one. */
export interface StateFiles {
  /** Contents, or undefined when the file does not exist. */
  read(path: string): Promise<string | undefined>;
  write(path: string, contents: string): Promise<void>;
}

export const nodeStateFiles: StateFiles = {
  async read(path) {
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  },
  async write(path, contents) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, contents, { mode: 0o600 });
  },
};

export interface LoadSystemIdOptions {
  /** Contents of /etc/machine-id (read by the caller); empty or undefined → random id. */
  machineId?: string;
  /** Where the id is kept across restarts (gitlab-runner's .runner_system_id); none → not persisted. */
  statePath?: string;
  files?: StateFiles;
  randomIndex?: (max: number) => number;
}

export interface LoadedSystemId {
  systemId: string;
  /** Set when a new id could not be written: the caller logs it (the next start will get another id). */
  persistError?: Error;
}

/** A valid id from the state file, else a new one (machine-id based, else random) saved there. */
export async function loadSystemId(options: LoadSystemIdOptions): Promise<LoadedSystemId> {
  const files = options.files ?? nodeStateFiles;
  if (options.statePath) {
    const stored = (await files.read(options.statePath))?.trim();
    if (stored && isValidSystemId(stored)) return { systemId: stored };
  }
  const machineId = options.machineId?.trim();
  const systemId = machineId ? systemIdFromMachineId(machineId) : randomSystemId(options.randomIndex);
  if (!options.statePath) return { systemId };
  try {
    await files.write(options.statePath, systemId);
    return { systemId };
  } catch (e) {
    return { systemId, persistError: e as Error };
  }
}
