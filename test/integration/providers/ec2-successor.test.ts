// What a replacement coordinator (a new process: a fresh Ec2Provider, nothing in memory) can do with the
// instances its predecessor launched, against the stateful fake EC2: reach them through their key tags
// (client key derived from the fleet secret, host key pinned from the tag), refuse tags that are missing,
// malformed or not this deployment's, and read the state and job labels the predecessor wrote with
// CreateTags, paced under EC2's request bucket. Time is virtual. The same reach over a real sshd is in
// ec2-ssh.test.ts.

import { randomBytes } from 'node:crypto';

import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { parseConfigText, type Ec2ProviderConfig } from '../../../src/config/index.js';
import { NotFoundError, PermanentError, type Clock, type ConnectionInfo, type OwnershipTags } from '../../../src/core/index.js';
import { Ec2Provider, type ReadinessProbe } from '../../../src/providers/ec2/index.js';
import { FakeEc2 } from '../../helpers/fake-ec2.js';
import { StepClock } from '../../helpers/step-clock.js';
import { VirtualClock } from '../gitlab/helpers/virtual-clock.js';

const owner: OwnershipTags = { fleet: 'test', executor: 'dind', coordinator: 'coord-1' };

function config(): Ec2ProviderConfig {
  return parseConfigText(`gitlab: { url: https://gitlab.example.com, token: glrt-${randomBytes(12).toString('hex')} }
concurrent: 2
executors:
  - name: dind
    provider: ec2
    maxMachines: 4
    ec2:
      subnets: [subnet-0aaa1111, subnet-0bbb2222]
      instanceTypes: [c6i.xlarge]
`).executors[0]!.ec2!;
}

/** One coordinator process's provider. `seen` records every connection the readiness probe was handed. */
function coordinator(fake: FakeEc2, keySecret: Uint8Array, clock: Clock = new VirtualClock(), seen: ConnectionInfo[] = []): Ec2Provider {
  const probe: ReadinessProbe = async (c) => void seen.push(c);
  return new Ec2Provider({ clients: fake, config: config(), executor: 'dind', fleet: 'test', bootTimeoutMs: 60_000, clock, random: () => 0.5, readinessProbe: probe, keySecret });
}

function publicHalf(privateKey: string): string {
  const k = ssh2.utils.parseKey(privateKey);
  if (k instanceof Error) throw k;
  return `${k.type} ${k.getPublicSSH().toString('base64')}`;
}

/** What the instance was given in its user data: its host public key and the client key it authorises. */
function installedKeys(fake: FakeEc2, id: string): { host: string; authorized: string } {
  const doc = parseYaml(fake.instances.get(id)!.userData) as { ssh_keys: { ed25519_public: string }; write_files: Array<{ path: string; content: string }> };
  return { host: doc.ssh_keys.ed25519_public, authorized: doc.write_files.find((f) => f.path === '/etc/fleetrunner/authorized_keys')!.content.trim() };
}

async function launchedByPredecessor(n = 1) {
  const fake = new FakeEc2({ pendingDescribes: 0 });
  const secret = randomBytes(32);
  const first = coordinator(fake, secret);
  const r = await first.create(n, owner);
  expect(r.errors).toEqual([]);
  await first.shutdown();
  return { fake, secret, machines: r.machines };
}

describe('ec2 provider: a successor reaches its predecessor\'s instances', () => {
  it('a new provider with the same fleet secret connects with the derived client key and the pinned host key', async () => {
    const { fake, secret, machines } = await launchedByPredecessor();
    const id = machines[0]!.id;
    const seen: ConnectionInfo[] = [];
    const successor = coordinator(fake, secret, new VirtualClock(), seen);

    const [listed] = await successor.list({ fleet: 'test' });
    expect(listed).toMatchObject({ id, state: 'running' });
    expect(listed!.unreachable).toBeUndefined();
    const info = await successor.waitReady(listed!);
    const installed = installedKeys(fake, id);
    expect(info.hostPublicKey).toBe(installed.host);
    expect(publicHalf(info.privateKey)).toBe(installed.authorized);
    expect(info.host).toBe(fake.instances.get(id)!.privateIp);
    expect(seen).toEqual([info]);
    expect(listed!.connection).toEqual(info);
  });

  it('also from a bare machine record (id only), with one DescribeInstances for its tags', async () => {
    const { fake, secret, machines } = await launchedByPredecessor();
    const successor = coordinator(fake, secret);
    const info = await successor.waitReady(machines[0]!);
    expect(publicHalf(info.privateKey)).toBe(installedKeys(fake, machines[0]!.id).authorized);
  });

  it('every instance gets its own client key', async () => {
    const { fake, secret, machines } = await launchedByPredecessor(3);
    const successor = coordinator(fake, secret);
    const keys = await Promise.all(machines.map(async (m) => publicHalf((await successor.waitReady(m)).privateKey)));
    expect(new Set(keys).size).toBe(3);
    expect(new Set(fake.live().map((i) => i.tags['fleetrunner:key-nonce'])).size).toBe(3);
  });

  it('another deployment (another fleet secret) is refused: listed as unreachable, never connected to, left running', async () => {
    const { fake, machines } = await launchedByPredecessor();
    const seen: ConnectionInfo[] = [];
    const stranger = coordinator(fake, randomBytes(32), new VirtualClock(), seen);
    const [listed] = await stranger.list({ fleet: 'test' });
    expect(listed!.connection).toBeUndefined();
    expect(listed!.unreachable).toMatch(/not written by this deployment/);
    const err = await stranger.waitReady(machines[0]!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/^EC2 instance i-\w+ cannot be reached by this coordinator: its key tags were not written by this deployment \(the fleetrunner:key-seal tag does not match/);
    expect(seen).toEqual([]);
    expect(fake.instances.get(machines[0]!.id)!.state).toBe('running');
  });

  const tamper: Array<[string, (tags: Record<string, string>) => void, RegExp]> = [
    ['a host key tag swapped for another key', (t) => (t['fleetrunner:host-key'] = publicHalfOfNew()), /not written by this deployment/],
    ['a nonce tag changed', (t) => (t['fleetrunner:key-nonce'] = randomBytes(16).toString('base64url')), /not written by this deployment/],
    ['a missing seal', (t) => delete t['fleetrunner:key-seal'], /its tag fleetrunner:key-seal is missing/],
    ['a missing host key and nonce', (t) => (delete t['fleetrunner:host-key'], delete t['fleetrunner:key-nonce']), /its tags fleetrunner:key-nonce, fleetrunner:host-key are missing/],
    ['a malformed host key', (t) => (t['fleetrunner:host-key'] = 'ssh-rsa AAAA'), /its tag fleetrunner:host-key is not well-formed/],
    ['no key tags at all', (t) => (delete t['fleetrunner:host-key'], delete t['fleetrunner:key-nonce'], delete t['fleetrunner:key-seal']), /has none of the tags .* \(launched by a fleetrunner without durable machine keys/],
  ];
  it.each(tamper)('%s is refused with a clear error before any connection', async (_, change, message) => {
    const { fake, secret, machines } = await launchedByPredecessor();
    change(fake.instances.get(machines[0]!.id)!.tags);
    const seen: ConnectionInfo[] = [];
    const successor = coordinator(fake, secret, new VirtualClock(), seen);
    const [listed] = await successor.list({ fleet: 'test' });
    expect(listed!.unreachable).toMatch(message);
    await expect(successor.waitReady(machines[0]!)).rejects.toThrow(message);
    expect(seen).toEqual([]);
  });

  it('the process that launched an instance keeps using the keys it made, whatever its tags say later', async () => {
    const fake = new FakeEc2({ pendingDescribes: 0 });
    const p = coordinator(fake, randomBytes(32));
    const [m] = (await p.create(1, owner)).machines;
    fake.instances.get(m!.id)!.tags['fleetrunner:host-key'] = publicHalfOfNew();
    expect((await p.waitReady(m!)).hostPublicKey).toBe(installedKeys(fake, m!.id).host);
  });

  it('a terminated or vanished instance is refused as such', async () => {
    const { fake, secret, machines } = await launchedByPredecessor();
    fake.setState(machines[0]!.id, 'terminated');
    const successor = coordinator(fake, secret);
    await expect(successor.waitReady(machines[0]!)).rejects.toThrow(/is terminated: it cannot be reached/);
    await expect(successor.waitReady({ ...machines[0]!, id: 'i-0000000000000dead' })).rejects.toThrow(/does not exist \(any more\)/);
  });
});

function publicHalfOfNew(): string {
  return publicHalf(ssh2.utils.generateKeyPairSync('ed25519').private);
}

describe('ec2 provider: state and job labels', () => {
  it('labels are instance tags a successor lists: busy with the job id, then idle with none', async () => {
    const { fake, secret, machines } = await launchedByPredecessor(2);
    const [a, b] = machines as [NonNullable<(typeof machines)[0]>, NonNullable<(typeof machines)[0]>];
    const first = coordinator(fake, secret);
    await first.label(a.id, { state: 'busy', job: '4711' });
    await first.label(b.id, { state: 'idle' });
    expect(fake.instances.get(a.id)!.tags).toMatchObject({ 'fleetrunner:state': 'busy', 'fleetrunner:job': '4711' });

    const successor = coordinator(fake, secret);
    const listed = new Map((await successor.list({ fleet: 'test' })).map((m) => [m.id, m.labels]));
    expect(listed.get(a.id)).toEqual({ state: 'busy', job: '4711' });
    expect(listed.get(b.id)).toEqual({ state: 'idle' });
    await successor.label(a.id, { state: 'idle' });
    expect(fake.instances.get(a.id)!.tags).toMatchObject({ 'fleetrunner:state': 'idle', 'fleetrunner:job': '' });
    expect((await successor.list({ fleet: 'test' })).find((m) => m.id === a.id)!.labels).toEqual({ state: 'idle' });
  });

  it('an instance never labelled, or with labels it does not understand, lists without labels', async () => {
    const { fake, secret, machines } = await launchedByPredecessor(2);
    fake.instances.get(machines[1]!.id)!.tags['fleetrunner:state'] = 'busy'; // busy without a job id
    const listed = await coordinator(fake, secret).list({ fleet: 'test' });
    expect(listed.map((m) => m.labels)).toEqual([undefined, undefined]);
  });

  it('labels of one instance are written in order, and one superseded while waiting is never sent', async () => {
    const { fake, secret, machines } = await launchedByPredecessor();
    const id = machines[0]!.id;
    const p = coordinator(fake, secret);
    fake.failNext('CreateTags', 1); // the first write is throttled once and retried after a pause
    await Promise.all([p.label(id, { state: 'busy', job: '1' }), p.label(id, { state: 'idle' }), p.label(id, { state: 'busy', job: '2' })]);
    expect(fake.instances.get(id)!.tags).toMatchObject({ 'fleetrunner:state': 'busy', 'fleetrunner:job': '2' });
    const sent = fake.createTagsInputs.map((i) => i.Tags!.map((t) => t.Value).join('/'));
    expect(sent).toEqual(['busy/1', 'busy/1', 'busy/2']);
  });

  it('a burst of labels stays under EC2\'s CreateTags bucket: nothing is throttled', async () => {
    const clock = new StepClock();
    const fake = new FakeEc2({ now: () => clock.now() });
    const ids = Array.from({ length: 150 }, () => fake.addInstance({ tags: { 'fleetrunner:fleet': 'test', 'fleetrunner:executor': 'dind', 'fleetrunner:coordinator': 'c' } }).id);
    const p = coordinator(fake, randomBytes(32), clock);
    const all = Promise.all(ids.map((id, n) => p.label(id, { state: 'busy', job: String(n + 1) })));
    await clock.advance(60_000);
    await all;
    expect(fake.createTagsThrottled).toBe(0);
    expect(fake.createTagsInputs).toHaveLength(150);
    expect(ids.every((id, n) => fake.instances.get(id)!.tags['fleetrunner:job'] === String(n + 1))).toBe(true);
  });

  it('an account whose bucket is smaller still gets every label, throttled calls retried with backoff', async () => {
    const clock = new StepClock();
    const fake = new FakeEc2({ now: () => clock.now(), createTagsRate: { burst: 4, perSecond: 2 } });
    const ids = Array.from({ length: 12 }, () => fake.addInstance({ tags: { 'fleetrunner:fleet': 'test' } }).id);
    const p = coordinator(fake, randomBytes(32), clock);
    const all = Promise.all(ids.map((id) => p.label(id, { state: 'idle' })));
    await clock.advance(120_000);
    await all;
    expect(fake.createTagsThrottled).toBeGreaterThan(0);
    expect(ids.every((id) => fake.instances.get(id)!.tags['fleetrunner:state'] === 'idle')).toBe(true);
  });

  it('a gone instance is a NotFoundError, a refused permission a PermanentError with AWS\'s code, a bad job id a caller error', async () => {
    const fake = new FakeEc2();
    const p = coordinator(fake, randomBytes(32));
    await expect(p.label('i-0000000000000dead', { state: 'idle' })).rejects.toBeInstanceOf(NotFoundError);
    const id = fake.addInstance({ tags: { 'fleetrunner:fleet': 'test' } }).id;
    fake.deny('ec2:CreateTags');
    const err = await p.label(id, { state: 'idle' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/^EC2 CreateTags \(labels idle of i-\w+\) failed: UnauthorizedOperation/);
    const bad = await p.label(id, { state: 'busy', job: 'glrt-not-a-job-id' }).catch((e: unknown) => e);
    expect((bad as Error).message).toMatch(/must be a GitLab job id \(digits\); 17 characters given/);
    expect((bad as Error).message).not.toContain('glrt-');
  });
});
