// The built CLI (`node bin/fleetrunner.js run --config F`) as the VM test runs it: with the AWS bridge
// preloaded (see aws-bridge.ts), its JSON log captured, and a stop that sends SIGTERM and reports the exit.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');
export const DIST_ENTRY = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

export interface CliProcess {
  child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  /** Its JSON log lines, parsed (lines that are not JSON are skipped). */
  logLines(): Array<Record<string, unknown>>;
  /** SIGTERM, then the exit code (or 'timeout'). */
  stop(timeoutMs?: number): Promise<number | null | 'timeout'>;
  kill(): Promise<void>;
}

export function startCli(o: { config: string; nodeArgs: string[]; env: Record<string, string> }): CliProcess {
  if (!existsSync(DIST_ENTRY)) throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
  let out = '';
  const child = spawn(process.execPath, [...o.nodeArgs, BIN, 'run', '--config', o.config], {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    logLines: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    stop: async (timeoutMs = 60_000) => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs))]);
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
