// `provider: fargate` through the built CLI: the coordinator talks to the fake ECS over HTTP
// (AWS_ENDPOINT_URL_ECS, as the SDK resolves it), and each task RunTask starts is played by real containers
// on the local Docker engine (test/helpers/ecs-docker-tasks.ts): the helper image delivers the agent, the
// job's image — fr-test/busybox, no sshd, no bash — runs it. Jobs run in their image as written; a size
// Fargate does not offer, services and an image that cannot be pulled fail with gitlab-runner's reasons;
// every task is stopped when its job ends. A coordinator replaced mid-job hands the running task to its
// successor.

import { createServer } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildHelperImage } from '../helpers/agent-image.js';
import { BUSYBOX_IMAGE, IMAGE_MARKER, MISSING_IMAGE, docker, ensureDocker, ensureTestImages } from '../helpers/docker-images.js';
import { DockerTasks } from '../helpers/ecs-docker-tasks.js';
import { FAKE_CLUSTER, FakeEcs } from '../helpers/fake-ecs.js';
import { counting, numbered, setOnShutdown, waitForTrace } from './handoff-helpers.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

const suffix = `${process.pid}-${Date.now().toString(36)}`;
const HELPER_IMAGE = `fr-test/fleetrunner-helper:${suffix}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let ecs: FakeEcs;
let tasks: DockerTasks;
let stack: Stack;
let endpoint: string;
let port: number;
const awsEnv = () => ({ AWS_ENDPOINT_URL_ECS: endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIAFAKE', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true' });
const fargateExecutor = () => [
  '  - name: plain',
  '    provider: fargate',
  '    maxMachines: 1',
  '    bootTimeout: 1m',
  '    fargate:',
  `      cluster: ${FAKE_CLUSTER}`,
  '      subnets: [subnet-0aaa1111, subnet-0bbb2222]',
  '      securityGroups: [sg-0ccc3333]',
  `      helperImage: ${HELPER_IMAGE}`,
  `      image: ${BUSYBOX_IMAGE}`,
  `      agentPort: ${port}`,
  '      definitionIdleTime: 0s',
];

beforeAll(async () => {
  ensureDocker();
  ensureTestImages();
  buildHelperImage(HELPER_IMAGE);
  tasks = new DockerTasks(`fr-e2e-task-${suffix}`);
  ecs = new FakeEcs({ hooks: tasks });
  tasks.attach(ecs);
  endpoint = await ecs.listen();
  port = await freePort();
  stack = await startStack({ concurrent: 1, env: awsEnv(), executors: fargateExecutor() });
}, 360_000);

afterAll(async () => {
  if (process.env.FR_E2E_DEBUG) console.log(stack?.log().slice(-6000));
  await stack?.cleanup();
  await tasks?.cleanup();
  await ecs?.close();
  try {
    docker('image', 'rm', '-f', HELPER_IMAGE);
  } catch {
    // already gone
  }
});

describe('provider: fargate through the built CLI (fake ECS, tasks as real containers)', () => {
  it('runs a job in its own image, which has no sshd and no bash, and stops its task', async () => {
    const p = await createSimplePipeline(stack.fake, [
      { name: 'plain', image: BUSYBOX_IMAGE, git_strategy: 'none', variables: { FLEETRUNNER_CPU: '0.5', FLEETRUNNER_MEMORY: '1Gi' }, script: ['cat /fleetrunner-image-marker', 'ls /usr/sbin/sshd || echo "no sshd here"'], after_script: ['echo "after: $CI_JOB_STATUS"'] },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.state, `${job.traceText}\n${stack.log()}`).toBe('success');
    expect(job.traceText).toContain(IMAGE_MARKER);
    expect(job.traceText).toContain('no sshd here');
    expect(job.traceText).toContain('after: success');
    const def = ecs.activeDefinitions().length ? ecs.activeDefinitions()[0]! : [...ecs.definitions.values()][0]!;
    expect(def).toMatchObject({ cpu: '512', memory: '1024' });
    await expect.poll(() => ecs.liveTasks().length, { timeout: 30_000 }).toBe(0);
    expect([...ecs.tasks.values()][0]!.stopCode).toBe('UserInitiated');
  }, 180_000);

  it('a size Fargate does not offer and services fail at once, before any task, naming why', async () => {
    const before = ecs.calls.RunTask;
    const p = await createSimplePipeline(stack.fake, [
      { name: 'bad-size', image: BUSYBOX_IMAGE, git_strategy: 'none', variables: { FLEETRUNNER_CPU: '1', FLEETRUNNER_MEMORY: '1024' }, script: ['true'] },
      { name: 'services', image: BUSYBOX_IMAGE, git_strategy: 'none', services: ['postgres:16'], script: ['true'] },
    ]);
    const bad = await waitFinished(stack.fake, p.jobIds[0]!, 60_000);
    expect(bad.state).toBe('failed');
    expect(bad.traceText).toContain('Fargate has no task with 1024 CPU units and 1024 MiB (with 1024 CPU units: 2048–8192 by 1024 MiB)');
    const svc = await waitFinished(stack.fake, p.jobIds[1]!, 60_000);
    expect(svc.state).toBe('failed');
    expect(svc.traceText).toContain('runs no services (postgres:16)');
    expect(ecs.calls.RunTask).toBe(before);
  }, 120_000);

  it('an image that cannot be pulled is image_pull_failure with ECS\'s stop reason in the trace, not retried', async () => {
    const before = ecs.calls.RunTask;
    const p = await createSimplePipeline(stack.fake, [{ name: 'no-image', image: MISSING_IMAGE, git_strategy: 'none', script: ['true'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.state).toBe('failed');
    expect(['image_pull_failure', 'runner_system_failure']).toContain(job.failureReason);
    expect(job.traceText).toContain('CannotPullContainerError');
    expect(ecs.calls.RunTask - before).toBe(1);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);

  it('a coordinator replaced mid-job hands the task to its successor, which finishes the job and stops the task', async () => {
    // The first coordinator of this file is stopped: the successor pair below is the only one asking for jobs.
    await stack.stop(60_000);
    const s = await startStack({ freshHome: true, concurrent: 1, env: awsEnv(), extra: ['onShutdown: handoff', 'handoffTimeout: 5s', 'shutdownTimeout: 60s'], executors: fargateExecutor() });
    try {
      const p = await createSimplePipeline(s.fake, [{ ...counting('counting', 60), image: BUSYBOX_IMAGE, git_strategy: 'none' as const }]);
      const id = p.jobIds[0]!;
      await waitForTrace(s, id, 'line-8\n', 120_000);
      s.child.kill('SIGTERM');
      expect(await s.waitExit(15_000)).toBe(0);
      expect(s.log()).toContain('job handed off to a successor');
      expect(ecs.liveTasks()).toHaveLength(1); // the task stayed, the job running in it

      setOnShutdown(s, 'drain');
      s.launchAgain();
      const done = await waitFinished(s.fake, id, 120_000).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${s.log().slice(-5000)}`);
      });
      expect(done.state, `${done.traceText}\n${s.log()}`).toBe('success');
      expect(numbered(done)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect(s.log()).toContain('continuing a job found on its machine');
      await expect.poll(() => ecs.liveTasks().length, { timeout: 60_000 }).toBe(0);
      expect(await s.stop(60_000)).toBe(0);
      expect(s.fake.violations).toEqual([]);
    } finally {
      await s.cleanup();
    }
  }, 300_000);
});
