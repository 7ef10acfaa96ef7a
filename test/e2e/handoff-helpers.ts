// Shared by the handoff e2e tests: machines of the local provider that outlive a coordinator process, found by
// their directories and their sshd processes; jobs printing numbered lines.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JobView } from '../../src/fakegitlab/index.js';
import type { Stack } from './harness.js';

/** Processes whose command line names a path under `dir` (a local machine's sshd names its config). */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').includes(dir)) pids.push(Number(e));
    } catch {
      /* gone while we looked */
    }
  }
  return pids;
}

/** Kills what a failed test left under `dir` (its machines' sshd processes). */
export function killUnder(dir: string): void {
  for (const pid of processesUnder(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export function machineIds(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(join(dir, d, 'machine.json'))) : [];
}

/** Switches the config file's onShutdown for the next launch. */
export function setOnShutdown(s: Stack, mode: 'handoff' | 'drain'): void {
  writeFileSync(s.configPath, readFileSync(s.configPath, 'utf8').replace(/^onShutdown: .*$/m, `onShutdown: ${mode}`));
}

/** A job printing numbered lines over ~`lines`/4 s (a line every 0.25 s). */
export function counting(name: string, lines: number, exit = 0) {
  return { name, script: [`for i in $(seq 1 ${lines}); do echo "line-$i"; sleep 0.25; done`, `exit ${exit}`] };
}

export function numbered(job: JobView): number[] {
  return [...job.traceText.matchAll(/^line-(\d+)\r?$/gm)].map((m) => Number(m[1]));
}

export async function waitForTrace(s: Stack, id: number, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!s.fake.job(id).traceText.includes(text)) {
    if (Date.now() > deadline) throw new Error(`job ${id}: "${text}" not in its trace after ${timeoutMs} ms:\n${s.fake.job(id).traceText}\n${s.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
