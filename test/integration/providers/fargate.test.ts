// The fargate provider against a stateful fake ECS at the SDK boundary: the shared provider contract, the
// RunTask and RegisterTaskDefinition inputs that matter, task definitions registered once, reused and
// deregistered when unused, placement under RESOURCE:ENI and capacity failures, throttling, stop reasons as
// errors, listing by startedBy and tags, and the config that builds it. Time is virtual.

import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { parseConfigText, type FargateProviderConfig } from '../../../src/config/index.js';
import { ImagePullError, InsufficientCapacityError, PermanentError, RetryableError, type OwnershipTags } from '../../../src/core/index.js';
import { FargateProvider } from '../../../src/providers/fargate/index.js';
import { FAKE_CLUSTER, FakeEcs, ecsError } from '../../helpers/fake-ecs.js';
import { VirtualClock } from '../gitlab/helpers/virtual-clock.js';
import { describeProviderContract } from './provider-contract.js';

const RUNNER_TOKEN = `glrt-${randomBytes(12).toString('hex')}`;

function config(extra = ''): FargateProviderConfig {
  const text = `gitlab:
  url: https://gitlab.example.com
  token: ${RUNNER_TOKEN}
concurrent: 4
executors:
  - name: plain
    provider: fargate
    maxMachines: 10
    bootTimeout: 3m
    jobRole: { roleArn: arn:aws:iam::123456789012:role/deploy-dev }
    fargate:
      cluster: ${FAKE_CLUSTER}
      subnets: [subnet-0aaa1111, subnet-0bbb2222]
      securityGroups: [sg-0ccc3333]
      helperImage: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetrunner:1
      ephemeralStorageGb: 50
      tags: { team: ci }
${extra}`;
  return parseConfigText(text).executors[0]!.fargate!;
}

function setup(extra = '') {
  const clock = new VirtualClock();
  const fake = new FakeEcs({ now: () => clock.now() });
  const provider = new FargateProvider({ ecs: fake.client, config: config(extra), executor: 'plain', fleet: 'test', clock, readinessProbe: async () => undefined, keySecret: randomBytes(32) });
  return { clock, fake, provider };
}

const owner: OwnershipTags = { fleet: 'test', executor: 'plain', coordinator: 'coord-1' };

describeProviderContract('fargate (fake ECS)', async () => ({ provider: setup().provider }));

describe('fargate provider', () => {
  it('runs the job image as written in a task: awsvpc in one private subnet, spot first, no exec, tags and startedBy', async () => {
    const s = setup();
    const r = await s.provider.create(1, owner, { task: { image: 'node:20-alpine' } });
    expect(r.errors).toEqual([]);
    const input = s.fake.runInputs[0]!;
    expect(input.capacityProviderStrategy).toEqual([{ capacityProvider: 'FARGATE_SPOT', weight: 1 }]);
    expect(input.networkConfiguration?.awsvpcConfiguration).toEqual({ subnets: ['subnet-0aaa1111'], securityGroups: ['sg-0ccc3333'], assignPublicIp: 'DISABLED' });
    expect(input.enableExecuteCommand).toBe(false);
    expect(input.platformVersion).toBe('LATEST');
    expect(input.overrides?.ephemeralStorage).toEqual({ sizeInGiB: 50 });
    expect(input.startedBy).toMatch(/^fleetrunner\/[0-9a-f]{24}$/);
    const tags = Object.fromEntries((input.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({ team: 'ci', 'fleetrunner:fleet': 'test', 'fleetrunner:executor': 'plain', 'fleetrunner:coordinator': 'coord-1' });
    expect(tags['fleetrunner:host-key']).toMatch(/^ssh-ed25519 /);
    // No secret in tags: the host private key is a container override for the agent only.
    expect(JSON.stringify(input.tags)).not.toContain('PRIVATE KEY');
    expect(JSON.stringify(input)).not.toContain(RUNNER_TOKEN);
    const def = s.fake.activeDefinitions()[0]!;
    expect(def.cpu).toBe('1024');
    expect(def.memory).toBe('2048');
    expect(def.taskRoleArn).toBe('arn:aws:iam::123456789012:role/deploy-dev');
    const [helper, job] = def.containerDefinitions!;
    expect(helper).toMatchObject({ name: 'fleetrunner-helper', essential: false, image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleetrunner:1' });
    expect(job).toMatchObject({ name: 'job', image: 'node:20-alpine', essential: true, entryPoint: ['/fleetrunner/bin/agent'], dependsOn: [{ containerName: 'fleetrunner-helper', condition: 'SUCCESS' }] });
  });

  it('registers a task definition once per (image, cpu, memory), reuses it, and deregisters it when unused', async () => {
    const s = setup();
    const a = await s.provider.create(2, owner, { task: { image: 'python:3.12' } });
    await s.provider.create(1, owner, { task: { image: 'python:3.12' } });
    await s.provider.create(1, owner, { task: { image: 'python:3.12', cpuUnits: 2048, memoryMiB: 4096 } });
    expect(s.fake.calls.RegisterTaskDefinition).toBe(2);
    expect(s.fake.activeDefinitions()).toHaveLength(2);
    // A successor finds the ACTIVE revision instead of registering again.
    const successor = new FargateProvider({ ecs: s.fake.client, config: config(), executor: 'plain', fleet: 'test', clock: s.clock, readinessProbe: async () => undefined });
    await successor.create(1, owner, { task: { image: 'python:3.12' } });
    expect(s.fake.calls.RegisterTaskDefinition).toBe(2);

    const all = (await s.provider.list({ fleet: 'test' })).map((m) => m.id);
    await s.provider.terminate(all);
    expect(s.fake.activeDefinitions()).toHaveLength(2); // not yet: definitionIdleTime (1h) has not passed
    await s.clock.sleep(61 * 60_000);
    await s.provider.terminate([a.machines[0]!.id]);
    expect(s.fake.activeDefinitions()).toHaveLength(0);
  });

  it('moves to the next subnet on RESOURCE:ENI and to FARGATE when FARGATE_SPOT has no capacity; on-demand skips spot', async () => {
    const s = setup();
    s.fake.fullSubnets.add('subnet-0aaa1111');
    s.fake.noCapacity.add('FARGATE_SPOT');
    const r = await s.provider.create(1, owner);
    expect(r.errors).toEqual([]);
    const tried = s.fake.runInputs.map((i) => [i.capacityProviderStrategy?.[0]?.capacityProvider, i.networkConfiguration?.awsvpcConfiguration?.subnets?.[0]]);
    expect(tried).toEqual([
      ['FARGATE_SPOT', 'subnet-0aaa1111'],
      ['FARGATE_SPOT', 'subnet-0bbb2222'],
      ['FARGATE', 'subnet-0aaa1111'],
      ['FARGATE', 'subnet-0bbb2222'],
    ]);
    // The full subnet and spot's shortage are benched: the next task goes straight to FARGATE in subnet b.
    const next = s.fake.runInputs.length;
    await s.provider.create(1, owner);
    expect(s.fake.runInputs.slice(next).map((i) => [i.capacityProviderStrategy?.[0]?.capacityProvider, i.networkConfiguration?.awsvpcConfiguration?.subnets?.[0]])).toEqual([['FARGATE', 'subnet-0bbb2222']]);
    const before = s.fake.runInputs.length;
    await s.provider.create(1, owner, { market: 'on-demand' });
    expect(s.fake.runInputs.slice(before).every((i) => i.capacityProviderStrategy?.[0]?.capacityProvider === 'FARGATE')).toBe(true);
  });

  it('no capacity anywhere is an InsufficientCapacityError naming every place tried', async () => {
    const s = setup();
    s.fake.noCapacity.add('FARGATE_SPOT');
    s.fake.noCapacity.add('FARGATE');
    const r = await s.provider.create(1, owner);
    expect(r.errors[0]).toBeInstanceOf(InsufficientCapacityError);
    expect(r.errors[0]!.message).toContain('FARGATE_SPOT in subnet-0aaa1111');
    expect(r.errors[0]!.message).toContain('FARGATE in subnet-0bbb2222');
  });

  it('throttled calls back off and succeed; a permanent error fails at once', async () => {
    const s = setup();
    s.fake.throttle('RunTask', 2);
    const r = await s.provider.create(1, owner);
    expect(r.errors).toEqual([]);
    expect(s.fake.throttled).toBe(2);
    s.fake.failNext('RunTask', ecsError('AccessDeniedException', 'not authorized to perform ecs:RunTask'));
    const denied = await s.provider.create(1, owner);
    expect(denied.errors[0]).toBeInstanceOf(PermanentError);
    expect(denied.errors[0]!.message).toContain('ecs:RunTask');
  });

  it('honours ECS rate limits: a burst of 30 tasks is paced, none is lost', async () => {
    const s = setup();
    const r = await s.provider.create(30, owner);
    expect(r.errors).toEqual([]);
    expect(r.machines).toHaveLength(30);
    expect(s.fake.throttled).toBeGreaterThan(0);
  });

  it('refuses a size Fargate does not offer, one outside the bounds, and services, before any RunTask', async () => {
    const s = setup();
    const bad = await s.provider.create(1, owner, { task: { cpuUnits: 1024, memoryMiB: 1024 } });
    expect(bad.errors[0]).toBeInstanceOf(PermanentError);
    expect(bad.errors[0]!.message).toContain('Fargate has no task with 1024 CPU units and 1024 MiB (with 1024 CPU units: 2048–8192 by 1024 MiB)');
    const big = await s.provider.create(1, owner, { task: { cpuUnits: 8192 } });
    expect(big.errors[0]!.message).toContain('outside this executor\'s bounds (256–4096)');
    const svc = await s.provider.create(1, owner, { task: { services: ['postgres:16'] } });
    expect(svc.errors[0]!.message).toContain('runs no services (postgres:16)');
    expect(s.fake.calls.RunTask).toBe(0);
  });

  it('a task that stopped before it was ready is its stop reason: a failed pull is an ImagePullError', async () => {
    const s = setup();
    const [m] = (await s.provider.create(1, owner, { task: { image: 'registry.example.com/nope:1' } })).machines;
    s.fake.failTask(m!.id, {
      stopCode: 'TaskFailedToStart',
      stoppedReason: 'CannotPullContainerError: pull image manifest has been retried 5 time(s): registry.example.com/nope:1: not found',
      container: { name: 'job', reason: 'CannotPullContainerError: registry.example.com/nope:1: not found' },
    });
    const err = await s.provider.waitReady(m!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImagePullError);
    expect((err as Error).message).toContain('task stopped (TaskFailedToStart): CannotPullContainerError');

    const [n] = (await s.provider.create(1, owner)).machines;
    s.fake.failTask(n!.id, { stopCode: 'SpotInterruption', stoppedReason: 'Your Spot Task was interrupted.' });
    expect(await s.provider.waitReady(n!).catch((e: unknown) => e)).toBeInstanceOf(RetryableError);
  });

  it('waitReady answers with the task address, the agent port and the pinned host key; a successor derives the same', async () => {
    const s = setup();
    const secret = randomBytes(32);
    const p = new FargateProvider({ ecs: s.fake.client, config: config(), executor: 'plain', fleet: 'test', clock: s.clock, readinessProbe: async () => undefined, keySecret: secret });
    const [m] = (await p.create(1, owner)).machines;
    const info = await p.waitReady(m!);
    expect(info).toMatchObject({ host: '10.0.0.1', port: 2222, buildsDir: '/fleetrunner/work/builds' });
    const hostKey = s.fake.runInputs[0]!.tags!.find((t) => t.key === 'fleetrunner:host-key')!.value;
    expect(info.hostPublicKey).toBe(hostKey);
    const successor = new FargateProvider({ ecs: s.fake.client, config: config(), executor: 'plain', fleet: 'test', clock: s.clock, readinessProbe: async () => undefined, keySecret: secret });
    const [listed] = await successor.list({ fleet: 'test' });
    expect(listed!.unreachable).toBeUndefined();
    expect(listed!.connection).toMatchObject({ host: '10.0.0.1', port: 2222, hostPublicKey: hostKey, privateKey: info.privateKey });
    expect((await successor.waitReady(listed!)).privateKey).toBe(info.privateKey);
    const stranger = new FargateProvider({ ecs: s.fake.client, config: config(), executor: 'plain', fleet: 'test', clock: s.clock, keySecret: randomBytes(32) });
    expect((await stranger.list({ fleet: 'test' }))[0]!.unreachable).toMatch(/^seal_mismatch/);
  });

  it('terminate is StopTask with a reason; the stopped task leaves the list', async () => {
    const s = setup();
    const [m] = (await s.provider.create(1, owner)).machines;
    expect(await s.provider.terminate([m!.id])).toEqual({ errors: [] });
    expect([...s.fake.tasks.values()][0]).toMatchObject({ desiredStatus: 'STOPPED', stopCode: 'UserInitiated' });
    expect(await s.provider.list({ fleet: 'test' })).toEqual([]);
  });
});

describe('fargate config', () => {
  it('refuses a default size Fargate does not offer, docker style and an idle pool, naming the key', () => {
    expect(() => config('      memory: { default: 1024 }')).toThrow(/executors\[0\]\.fargate\.memory\.default.*Fargate has no task with 1024 CPU units and 1024 MiB/);
    expect(() => parseConfigText(`gitlab: { url: https://g.example.com, token: ${RUNNER_TOKEN} }\nconcurrent: 1\nexecutors:\n  - { name: f, provider: fargate, style: docker, maxMachines: 1, fargate: { cluster: c, subnets: [subnet-0aaa1111], helperImage: h } }\n`)).toThrow(/executors\[0\]\.style/);
    expect(() => parseConfigText(`gitlab: { url: https://g.example.com, token: ${RUNNER_TOKEN} }\nconcurrent: 1\nexecutors:\n  - { name: f, provider: fargate, maxMachines: 1, pool: { idleCount: 1 }, fargate: { cluster: c, subnets: [subnet-0aaa1111], helperImage: h } }\n`)).toThrow(/executors\[0\]\.pool/);
    expect(() => parseConfigText(`gitlab: { url: https://g.example.com, token: ${RUNNER_TOKEN} }\nconcurrent: 1\nexecutors:\n  - { name: f, provider: fargate, maxMachines: 1 }\n`)).toThrow(/executors\[0\]\.fargate/);
  });
});
