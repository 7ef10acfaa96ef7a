// The runner token GitLab rotated, kept in `<stateDir>/runner-token.json` (mode 600) so a restart uses it.
// It is bound to the configured token it came from (by its last six characters, never the whole token):
// a new token in the config makes the saved one irrelevant.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunnerTokenState } from '../gitlab/index.js';

export function tokenFilePath(stateDir: string): string {
  return join(stateDir, 'runner-token.json');
}

/** The saved state for this configured token, or undefined (none, unreadable, or another token's). */
export async function loadRotatedToken(stateDir: string, configuredToken: string): Promise<RunnerTokenState | undefined> {
  try {
    const saved = JSON.parse(await readFile(tokenFilePath(stateDir), 'utf8')) as { configuredSuffix?: string; state?: RunnerTokenState };
    if (saved.configuredSuffix !== configuredToken.slice(-6) || typeof saved.state?.token !== 'string') return undefined;
    return saved.state;
  } catch {
    return undefined;
  }
}

export async function saveRotatedToken(stateDir: string, configuredToken: string, state: RunnerTokenState): Promise<void> {
  await writeFile(tokenFilePath(stateDir), JSON.stringify({ configuredSuffix: configuredToken.slice(-6), state }), { mode: 0o600 });
}
