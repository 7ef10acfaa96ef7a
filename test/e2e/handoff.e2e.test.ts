// A coordinator replaced mid-job loses nothing (the built CLI, the local provider, the strict fake GitLab).
// Every coordinator process starts as a Fargate task would: an empty HOME of its own, no stateDir from an
// earlier process, no machine-id. The machines (local: sshd processes in directories) outlive it.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/fakegitlab/index.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
let root: string | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  if (root) {
    // Safety net for a failed test: its machines' sshd processes, then their directories.
    for (const pid of processesUnder(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(root, { recursive: true, force: true });
  }
  root = undefined;
});

/** Processes whose command line names a path under `dir` (a local machine's sshd names its config). */
function processesUnder(dir: string): number[] {
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

function machineIds(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(join(dir, d, 'machine.json'))) : [];
}

function config(o: { onShutdown: 'handoff' | 'drain'; idleCount?: number; concurrent?: number }) {
  return {
    freshHome: true,
    concurrent: o.concurrent ?? 4,
    extra: [`onShutdown: ${o.onShutdown}`, 'handoffTimeout: 5s', 'shutdownTimeout: 60s'],
    executors: [
      '  - name: local',
      '    provider: local',
      '    style: shell',
      '    maxMachines: 4',
      '    local:',
      `      root: ${root}`,
      ...(o.idleCount ? ['    pool:', `      idleCount: ${o.idleCount}`, '      idleTime: 10m', '      maxUseCount: 10'] : []),
    ],
  };
}

/** Switches the config file's onShutdown for the next launch. */
function setOnShutdown(s: Stack, mode: 'handoff' | 'drain'): void {
  writeFileSync(s.configPath, readFileSync(s.configPath, 'utf8').replace(/^onShutdown: .*$/m, `onShutdown: ${mode}`));
}

/** A job printing numbered lines over ~`seconds` s (a line every 0.25 s). */
function counting(name: string, lines: number, exit = 0) {
  return { name, script: [`for i in $(seq 1 ${lines}); do echo "line-$i"; sleep 0.25; done`, `exit ${exit}`] };
}

function numbered(job: JobView): number[] {
  return [...job.traceText.matchAll(/^line-(\d+)\r?$/gm)].map((m) => Number(m[1]));
}

async function waitForTrace(s: Stack, id: number, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!s.fake.job(id).traceText.includes(text)) {
    if (Date.now() > deadline) throw new Error(`job ${id}: "${text}" not in its trace after ${timeoutMs} ms:\n${s.fake.job(id).traceText}\n${s.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('e2e: handoff to a successor coordinator', () => {
  it('SIGTERM then SIGKILL mid-job: a fresh process finishes the job with its whole trace, as the same runner manager, and leaves nothing after its own stop', async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-handoff-'));
    stack = await startStack(config({ onShutdown: 'handoff' }));
    const p = await createSimplePipeline(stack.fake, [counting('counting', 80)]);
    const id = p.jobIds[0]!;
    await waitForTrace(stack, id, 'line-12\n');

    // ECS: SIGTERM on deploy, SIGKILL 10 s later if the task is still there.
    stack.child.kill('SIGTERM');
    const first = await stack.waitExit(10_000);
    if (first === 'timeout') stack.child.kill('SIGKILL');
    expect(first).toBe(0);
    expect(stack.log()).toContain('job handed off to a successor');
    expect(machineIds(root)).toHaveLength(1); // the machine stayed, with the job running on it

    setOnShutdown(stack, 'drain');
    stack.launchAgain();
    const done = await waitFinished(stack.fake, id, 120_000);
    expect(done.state).toBe('success');
    expect(numbered(done)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    expect(done.traceText).toContain('Job succeeded');
    // One runner manager for both processes (the system_id comes from the configuration).
    const runner = stack.fake.runner(done.runnerId!);
    expect(runner.managers).toHaveLength(1);
    expect(stack.log()).toContain('continuing a job found on its machine');

    expect(await stack.stop(60_000)).toBe(0);
    expect(machineIds(root)).toEqual([]);
    expect(processesUnder(root)).toEqual([]);
    expect(stack.fake.violations).toEqual([]);
  }, 240_000);

  it('SIGKILL alone with two running jobs and an idle machine: both jobs end with their real results, the idle machine is adopted and serves the next job', async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-handoff-'));
    stack = await startStack(config({ onShutdown: 'drain', idleCount: 1 }));
    const p = await createSimplePipeline(stack.fake, [counting('passes', 60), counting('fails', 50, 3)]);
    const [a, b] = p.jobIds as [number, number];
    await waitForTrace(stack, a, 'line-8\n');
    await waitForTrace(stack, b, 'line-8\n');
    // The pool has its idle machine beside the two busy ones.
    const deadline = Date.now() + 60_000;
    while (machineIds(root).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const before = machineIds(root);
    expect(before).toHaveLength(3);

    stack.child.kill('SIGKILL');
    await stack.waitExit(10_000);
    stack.launchAgain();

    // The next job, asked for while the two still run, goes to the adopted idle machine.
    const next = await createSimplePipeline(stack.fake, [{ name: 'next', script: ['pwd'] }]);
    const nextDone = await waitFinished(stack.fake, next.jobIds[0]!, 120_000);
    expect(nextDone.state).toBe('success');
    const adopted = /"machine":"([^"]+)","as":"idle","msg":"adopted a machine an earlier coordinator left"/.exec(stack.log())?.[1];
    expect(adopted).toBeDefined();
    expect(before).toContain(adopted);
    expect(nextDone.traceText).toContain(adopted!);

    const [doneA, doneB] = await Promise.all([waitFinished(stack.fake, a, 120_000), waitFinished(stack.fake, b, 120_000)]);
    expect(doneA.state).toBe('success');
    expect(numbered(doneA)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(doneB).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 3 });
    expect(numbered(doneB)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(stack.log()).toMatch(/"jobs":\[\d+,\d+\],"idle":1,"removed":0,"msg":"took over the machines of the previous coordinator"/);

    expect(await stack.stop(60_000)).toBe(0);
    expect(machineIds(root)).toEqual([]);
    expect(processesUnder(root)).toEqual([]);
    expect(stack.fake.violations).toEqual([]);
  }, 300_000);
});
