// A coordinator replaced mid-job loses nothing (the built CLI, the local provider, the strict fake GitLab).
// Every coordinator process starts as a Fargate task would: an empty HOME of its own, no stateDir from an
// earlier process, no machine-id. The machines (local: sshd processes in directories) outlive it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';
import { waitForRequest } from './outage.js';
import { counting, killUnder, machineIds, numbered, processesUnder, setOnShutdown, waitForTrace } from './handoff-helpers.js';

let stack: Stack | undefined;
let root: string | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  if (root) {
    // Safety net for a failed test: its machines' sshd processes, then their directories.
    killUnder(root);
    rmSync(root, { recursive: true, force: true });
  }
  root = undefined;
});

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

  it('SIGKILL while GitLab refuses the final state: a fresh process, with no journal, delivers the real result and whole trace from the machine', async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-handoff-'));
    stack = await startStack({ ...config({ onShutdown: 'drain' }), gitlabExtra: ['  finalUpdateMaxBackoff: 5s'] });
    stack.fake.injectFaults({ outageOnFinalPut: { status: 502, durationMs: 25_000 } });
    const p = await createSimplePipeline(stack.fake, [counting('ends-in-outage', 20, 3)]);
    const id = p.jobIds[0]!;
    await waitForRequest(stack.fake, (r) => r.method === 'PUT' && r.path === `/api/v4/jobs/${id}` && r.status === 502, 60_000);
    // The job is over on its machine; its result is only in this process and on the machine.
    stack.child.kill('SIGKILL');
    await stack.waitExit(10_000);
    expect(machineIds(root)).toHaveLength(1);
    stack.launchAgain();

    const done = await waitFinished(stack.fake, id, 180_000);
    expect(done).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 3 });
    expect(numbered(done)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(done.traceText.match(/ERROR: Job failed: exit code 3/g)).toHaveLength(1);
    expect(stack.log()).toContain('continuing a job found on its machine');
    expect(await stack.stop(60_000)).toBe(0);
    expect(machineIds(root)).toEqual([]);
    expect(processesUnder(root)).toEqual([]);
    expect(stack.fake.violations).toEqual([]);
  }, 300_000);
});
