// The docker style replaced mid-job, through the built CLI with local machines and this host's dockerd: the
// job's build container keeps running while no coordinator follows it, a fresh process (empty HOME, no
// stateDir) follows the same container to its end, and nothing is left afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker, ensureTestImages, HTTPD_IMAGE, jobResources, runningContainers } from '../helpers/docker-images.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';
import { killUnder, machineIds, numbered, processesUnder, setOnShutdown, waitForTrace } from './handoff-helpers.js';

let stack: Stack | undefined;
let root: string | undefined;
beforeAll(() => {
  ensureDocker();
  ensureTestImages();
}, 120_000);
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  if (root) {
    killUnder(root);
    rmSync(root, { recursive: true, force: true });
  }
  root = undefined;
});

function config(onShutdown: 'handoff' | 'drain') {
  return {
    freshHome: true,
    extra: [`onShutdown: ${onShutdown}`, 'handoffTimeout: 5s', 'shutdownTimeout: 60s'],
    executors: [
      '  - name: containers',
      '    provider: local',
      '    style: docker',
      '    maxMachines: 2',
      '    local:',
      `      root: ${root}`,
      '    docker:',
      `      defaultImage: ${BUSYBOX_IMAGE}`,
      '      pullPolicy: if-not-present',
      '      waitForServicesTimeout: 10s',
    ],
  };
}

/** Numbered lines from the job image's POSIX sh, a line every 0.25 s. */
function countingInImage(lines: number, exit = 0): string[] {
  return [`i=1; while [ $i -le ${lines} ]; do echo "line-$i"; i=$((i+1)); sleep 0.25; done`, `exit ${exit}`];
}

describe('e2e: docker style handed to a successor coordinator', () => {
  it('SIGTERM then SIGKILL mid-stage: the build container runs on, a fresh process follows it to the real result with the whole trace, and removes everything', async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-handoff-docker-'));
    stack = await startStack(config('handoff'));
    const secret = `HandoffSecret${Date.now()}`;
    const p = await createSimplePipeline(stack.fake, [
      {
        name: 'in-image',
        image: BUSYBOX_IMAGE,
        services: [{ name: HTTPD_IMAGE, alias: 'web' }],
        variables: { HANDOFF_SECRET: { value: secret, masked: true } },
        script: ['echo "secret is $HANDOFF_SECRET"', ...countingInImage(60, 4)],
        after_script: ['echo "after in image: $CI_JOB_STATUS"'],
      },
    ]);
    const id = p.jobIds[0]!;
    await waitForTrace(stack, id, 'line-10\n', 120_000);

    stack.child.kill('SIGTERM');
    const first = await stack.waitExit(10_000);
    if (first === 'timeout') stack.child.kill('SIGKILL');
    expect(first).toBe(0);
    expect(stack.log()).toContain('job handed off to a successor');
    // No coordinator follows the job now: its build container and its service run on.
    expect(runningContainers(id).length).toBeGreaterThanOrEqual(2);

    setOnShutdown(stack, 'drain');
    stack.launchAgain();
    const done = await waitFinished(stack.fake, id, 180_000);
    expect(done).toMatchObject({ state: 'failed', failureReason: 'script_failure', exitCode: 4 });
    expect(numbered(done)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(done.traceText).toContain('secret is [MASKED]');
    expect(done.traceText).not.toContain(secret);
    expect(done.traceText.match(/after in image: failed/g)).toHaveLength(1);
    expect(done.traceText.match(/ERROR: Job failed: exit code 4/g)).toHaveLength(1);
    expect(stack.log()).toContain('continuing a job found on its machine');
    expect(jobResources(id)).toEqual({ containers: [], networks: [], volumes: [] });

    expect(await stack.stop(60_000)).toBe(0);
    expect(machineIds(root)).toEqual([]);
    expect(processesUnder(root)).toEqual([]);
    expect(stack.fake.violations).toEqual([]);
  }, 360_000);

  it('SIGTERM while the job is being prepared: a fresh process removes what prepare made, prepares again and runs the job once', async () => {
    root = mkdtempSync(join(tmpdir(), 'fr-handoff-docker-'));
    stack = await startStack(config('handoff'));
    const p = await createSimplePipeline(stack.fake, [
      {
        name: 'slow-service',
        image: BUSYBOX_IMAGE,
        // A service that never opens its port: prepare waits waitForServicesTimeout (10 s) for it.
        services: [{ name: HTTPD_IMAGE, alias: 'slow', command: ['sh', '-c', 'sleep 600'], entrypoint: [''] }],
        script: ['echo "script ran"'],
      },
    ]);
    const id = p.jobIds[0]!;
    await waitForTrace(stack, id, 'Waiting for services', 120_000);

    stack.child.kill('SIGTERM');
    expect(await stack.waitExit(10_000)).toBe(0);
    setOnShutdown(stack, 'drain');
    stack.launchAgain();
    const done = await waitFinished(stack.fake, id, 180_000);
    expect(done.state).toBe('success');
    expect(stack.log()).toContain('continuing a job found on its machine');
    expect(done.traceText.match(/^script ran\r?$/gm)).toHaveLength(1);
    // The successor appended after the trace GitLab had (the handoff recorded it), saying why prepare ran again.
    expect(done.traceText.match(/Running with fleetrunner/g)).toHaveLength(1);
    expect(done.traceText).toContain('the runner that started this job was replaced before the job was prepared: preparing it again');
    expect(jobResources(id)).toEqual({ containers: [], networks: [], volumes: [] });
    expect(await stack.stop(60_000)).toBe(0);
    expect(machineIds(root)).toEqual([]);
    expect(stack.fake.violations).toEqual([]);
  }, 360_000);
});
