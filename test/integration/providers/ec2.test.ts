// The ec2 provider against a stateful fake EC2 at the SDK boundary: the shared provider contract, the exact
// RunInstances input that matters, placement under capacity errors, throttling, termination, listing by
// ownership tags and readiness. Time is virtual: backoffs and boot timeouts take microseconds.

import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { parse as parseYaml } from 'yaml';

import { parseConfigText, type Ec2ProviderConfig } from '../../../src/config/index.js';
import {
  InsufficientCapacityError,
  PermanentError,
  RetryableError,
  type ConnectionInfo,
  type OwnershipTags,
} from '../../../src/core/index.js';
import { Ec2Provider, type Ec2ProviderOptions, type KeyPair, type ReadinessProbe } from '../../../src/providers/ec2/index.js';
import { generateEd25519 } from '../../../src/providers/ssh-keys.js';
import { FAKE_AMI, FAKE_AMI_PARAMETER, FAKE_SUBNETS, FakeEc2, type FakeEc2Options } from '../../helpers/fake-ec2.js';
import { VirtualClock } from '../gitlab/helpers/virtual-clock.js';
import { describeProviderContract } from './provider-contract.js';

const RUNNER_TOKEN = `glrt-${randomBytes(12).toString('hex')}`;
const SUBNET_A = 'subnet-0aaa1111';
const SUBNET_B = 'subnet-0bbb2222';

/** The issue's example, compiled by the real config code (with a token that must never reach EC2). Its
 *  `privileged: true` is only carried here; test/e2e/dind-vm.e2e.test.ts runs it for real (a VM booted
 *  from the rendered user data, a nested dockerd in privileged containers). */
function issueConfig(extra = ''): Ec2ProviderConfig {
  const text = `gitlab:
  url: https://gitlab.example.com
  token: ${RUNNER_TOKEN}
concurrent: 4
executors:
  - name: dind
    provider: ec2
    style: docker
    privileged: true
    maxMachines: 10
    ec2:
      region: eu-west-1
      subnets: [subnet-0aaa1111, subnet-0bbb2222]
      securityGroups: [sg-0ccc3333]
      instanceTypes: [c6i.xlarge, m6i.xlarge]
      iamInstanceProfile: fleetrunner-executor
      spot: true
      tags: { team: ci }
${extra}`;
  return parseConfigText(text).executors[0]!.ec2!;
}

interface Setup {
  fake: FakeEc2;
  clock: VirtualClock;
  provider: Ec2Provider;
  keys: Array<{ comment: string; pair: KeyPair }>;
}

const okProbe: ReadinessProbe = async () => undefined;

function setup(o: { config?: Partial<Ec2ProviderConfig>; fake?: FakeEc2Options; provider?: Partial<Ec2ProviderOptions> } = {}): Setup {
  const clock = new VirtualClock();
  const fake = new FakeEc2({ now: () => clock.now(), ...o.fake });
  const keys: Setup['keys'] = [];
  const provider = new Ec2Provider({
    clients: fake,
    config: { ...issueConfig(), spot: false, ...o.config },
    executor: 'dind',
    fleet: 'test',
    bootTimeoutMs: 120_000,
    clock,
    random: () => 0.5,
    readinessProbe: okProbe,
    generateKeyPair: (comment) => {
      const pair = generateEd25519(comment);
      keys.push({ comment, pair });
      return pair;
    },
    ...o.provider,
  });
  return { fake, clock, provider, keys };
}

const owner: OwnershipTags = { fleet: 'test', executor: 'dind', coordinator: 'coord-1' };

async function createOk(s: Setup, n = 1) {
  const r = await s.provider.create(n, owner);
  expect(r.errors).toEqual([]);
  return r.machines;
}

/** "ssh-ed25519 AAAA…" of an OpenSSH private key. */
function publicHalf(privateKey: string): string {
  const k = ssh2.utils.parseKey(privateKey);
  if (k instanceof Error) throw k;
  return `${k.type} ${k.getPublicSSH().toString('base64')}`;
}

const subnetOf = (i: { NetworkInterfaces?: Array<{ SubnetId?: string }> }) => i.NetworkInterfaces?.[0]?.SubnetId;

describeProviderContract('ec2 (fake EC2)', async () => ({ provider: setup().provider }));

describe('ec2 provider: the RunInstances request', () => {
  it('asks for one hardened, tagged, private instance per machine, rotating subnets across AZs', async () => {
    const s = setup();
    await createOk(s, 2);
    expect(s.fake.runInputs).toHaveLength(2);
    const [first, second] = s.fake.runInputs as [NonNullable<(typeof s.fake.runInputs)[0]>, NonNullable<(typeof s.fake.runInputs)[0]>];
    expect(new Set([subnetOf(first), subnetOf(second)])).toEqual(new Set([SUBNET_A, SUBNET_B]));
    expect(FAKE_SUBNETS[subnetOf(first)!]).not.toBe(FAKE_SUBNETS[subnetOf(second)!]);

    expect(first).toMatchObject({
      ImageId: FAKE_AMI,
      InstanceType: 'c6i.xlarge',
      MinCount: 1,
      MaxCount: 1,
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 30, VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true } }],
      IamInstanceProfile: { Name: 'fleetrunner-executor' },
      InstanceInitiatedShutdownBehavior: 'terminate',
      NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: false, Groups: ['sg-0ccc3333'], DeleteOnTermination: true }],
    });
    expect(first.ClientToken).toMatch(/\S/);
    expect(first.ClientToken).not.toBe(second.ClientToken);
    // No key pair, no security group made for us, no instance-level network settings, on-demand.
    expect(first.KeyName).toBeUndefined();
    expect(first.SubnetId).toBeUndefined();
    expect(first.SecurityGroupIds).toBeUndefined();
    expect(first.InstanceMarketOptions).toBeUndefined();
    expect(s.fake.calls.RunInstances).toBe(2);
  });

  it('tags instance and volume at launch with ownership, Name and user tags, and nothing secret', async () => {
    const s = setup();
    await createOk(s);
    const specs = s.fake.runInputs[0]!.TagSpecifications!;
    expect(specs.map((t) => t.ResourceType).sort()).toEqual(['instance', 'volume']);
    const host = s.keys.find((k) => k.comment.includes('host'))!.pair;
    for (const spec of specs) {
      const tags = Object.fromEntries(spec.Tags!.map((t) => [t.Key, t.Value]));
      const ownership = {
        'fleetrunner:fleet': 'test',
        'fleetrunner:executor': 'dind',
        'fleetrunner:coordinator': 'coord-1',
        Name: 'fleetrunner test/dind',
        team: 'ci',
      };
      // The instance also carries what a successor needs to reach it: the key nonce, the host PUBLIC key
      // and their seal. Nothing else, and nothing secret.
      if (spec.ResourceType === 'instance') {
        expect(tags).toEqual({ ...ownership, 'fleetrunner:key-nonce': expect.stringMatching(/^[\w-]{22}$/), 'fleetrunner:host-key': host.public, 'fleetrunner:key-seal': expect.stringMatching(/^[\w-]{22}$/) });
        expect(host.public.length).toBeLessThan(256);
      } else expect(tags).toEqual(ownership);
      const text = JSON.stringify(spec.Tags);
      expect(text).not.toContain(host.private.split('\n')[3]);
      expect(text).not.toMatch(/PRIVATE KEY|glrt-/);
    }
  });

  it('a user tag cannot overwrite an ownership tag', async () => {
    const s = setup({ config: { tags: { 'fleetrunner:fleet': 'someone-else', Name: 'mine', owner: 'me' } } });
    await createOk(s);
    const tags = Object.fromEntries(s.fake.runInputs[0]!.TagSpecifications![0]!.Tags!.map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({ 'fleetrunner:fleet': 'test', Name: 'fleetrunner test/dind', owner: 'me' });
  });

  it('user data is cloud-init carrying this instance\'s host key and the client public key, and no token', async () => {
    const s = setup();
    const [m] = await createOk(s);
    const info = await s.provider.waitReady(m!);
    const host = s.keys.find((k) => k.comment.includes('host'))!.pair;
    const client = { private: info.privateKey, public: publicHalf(info.privateKey) };
    const userData = Buffer.from(s.fake.runInputs[0]!.UserData!, 'base64').toString('utf8');

    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    const doc = parseYaml(userData) as { ssh_keys: Record<string, string>; ssh_deletekeys: boolean; write_files: Array<{ path: string; content: string }> };
    expect(doc.ssh_deletekeys).toBe(true);
    expect(doc.ssh_keys.ed25519_private).toBe(host.private.endsWith('\n') ? host.private : `${host.private}\n`);
    expect(doc.ssh_keys.ed25519_public).toBe(host.public);
    expect(doc.write_files.find((f) => f.path === '/etc/fleetrunner/authorized_keys')!.content.trim()).toBe(client.public);
    expect(userData).toMatch(/^\s+dnf install -y/m);
    expect(userData).toContain('{"credsStore":"ecr-login"}');
    expect(userData).not.toContain(RUNNER_TOKEN);
    expect(userData).not.toContain(client.private.split('\n')[3]);
    expect(userData).not.toMatch(/\{\{/);

    // The connection is pinned to exactly the key the instance was given.
    expect(info).toEqual<ConnectionInfo>({
      host: s.fake.instances.get(m!.id)!.privateIp,
      port: 22,
      username: 'ec2-user',
      privateKey: client.private,
      hostPublicKey: host.public,
      buildsDir: '/builds',
      cacheDir: '/cache',
      stateDir: '/var/lib/fleetrunner',
    });
  });

  it('with bakedAmi the install steps are left out', async () => {
    const s = setup({ config: { bakedAmi: true } });
    await createOk(s);
    const userData = Buffer.from(s.fake.runInputs[0]!.UserData!, 'base64').toString('utf8');
    expect(userData).not.toMatch(/^\s+dnf install/m);
    expect(userData).toContain('usermod -aG docker');
  });

  it('spot requests are one-time and terminate on interruption, and the spot request is tagged too', async () => {
    const s = setup({ config: { spot: true } });
    await createOk(s);
    const input = s.fake.runInputs[0]!;
    expect(input.InstanceMarketOptions).toEqual({ MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } });
    expect(input.TagSpecifications!.map((t) => t.ResourceType)).toContain('spot-instances-request');
  });

  it('an instance profile ARN, a public IP and connectVia public are honoured when asked', async () => {
    const arn = 'arn:aws:iam::123456789012:instance-profile/ci';
    const s = setup({ config: { iamInstanceProfile: arn, associatePublicIp: true, connectVia: 'public' } });
    const [m] = await createOk(s);
    expect(s.fake.runInputs[0]).toMatchObject({ IamInstanceProfile: { Arn: arn }, NetworkInterfaces: [{ AssociatePublicIpAddress: true }] });
    const info = await s.provider.waitReady(m!);
    expect(info.host).toBe(s.fake.instances.get(m!.id)!.publicIp);
  });

  it('resolves the AMI from SSM once and again after an hour; a fixed AMI needs no lookup', async () => {
    const s = setup();
    await createOk(s, 3);
    expect(s.fake.calls.GetParameter).toBe(1);
    await s.clock.sleep(61 * 60_000);
    s.fake.parameters.set(FAKE_AMI_PARAMETER, 'ami-0fedcba9876543210');
    await createOk(s);
    expect(s.fake.calls.GetParameter).toBe(2);
    expect(s.fake.runInputs.at(-1)!.ImageId).toBe('ami-0fedcba9876543210');

    const fixed = setup({ config: { ami: FAKE_AMI } });
    await createOk(fixed);
    expect(fixed.fake.calls.GetParameter).toBe(0);
  });
});

describe('ec2 provider: placement under capacity errors', () => {
  it('moves to the next subnet at once and benches the failing one until the cooldown passes', async () => {
    const s = setup({ config: { instanceTypes: ['c6i.xlarge'] } });
    s.fake.failCapacity({ subnet: SUBNET_A });
    const callsTo = (subnet: string) => s.fake.runInputs.filter((i) => subnetOf(i) === subnet).length;

    const [m] = await createOk(s); // A fails, B launches
    expect(s.fake.instances.get(m!.id)!.subnet).toBe(SUBNET_B);
    expect(s.fake.runInputs.map(subnetOf)).toEqual([SUBNET_A, SUBNET_B]);

    await createOk(s, 2); // both land in B; A is not even asked
    expect(callsTo(SUBNET_A)).toBe(1);

    await s.clock.sleep(5 * 60_000 + 1); // the default cooldown
    await createOk(s, 2); // A is tried again (and fails again)
    expect(callsTo(SUBNET_A)).toBe(2);
    expect(s.fake.live().every((i) => i.subnet === SUBNET_B)).toBe(true);
  });

  it('an instance type not offered in an AZ ("Unsupported") is skipped like missing capacity', async () => {
    const s = setup();
    s.fake.failCapacity({ instanceType: 'c6i.xlarge', code: 'Unsupported' });
    const [m] = await createOk(s);
    expect(s.fake.instances.get(m!.id)!.instanceType).toBe('m6i.xlarge');
  });

  it('falls back to on-demand when every spot pool is out of capacity', async () => {
    const s = setup({ config: { spot: true } });
    s.fake.failCapacity({ market: 'spot' });
    const [m] = await createOk(s);
    expect(s.fake.instances.get(m!.id)!.market).toBe('on-demand');
    const markets = s.fake.runInputs.map((i) => (i.InstanceMarketOptions ? 'spot' : 'on-demand'));
    expect(markets).toEqual(['spot', 'spot', 'spot', 'spot', 'on-demand']);
  });

  it('a spot quota error skips the remaining spot pools at once', async () => {
    const s = setup({ config: { spot: true } });
    s.fake.failCapacity({ market: 'spot', code: 'MaxSpotInstanceCountExceeded' });
    await createOk(s);
    expect(s.fake.runInputs.map((i) => (i.InstanceMarketOptions ? 'spot' : 'on-demand'))).toEqual(['spot', 'on-demand']);
  });

  it('without fallback, exhausted spot pools give an InsufficientCapacityError naming what was tried', async () => {
    const s = setup({ config: { spot: true, onDemandFallback: false } });
    s.fake.failCapacity({ market: 'spot' });
    const r = await s.provider.create(1, owner);
    expect(r.machines).toEqual([]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toBeInstanceOf(InsufficientCapacityError);
    expect(r.errors[0]!.message).toMatch(/spot c6i\.xlarge in subnet-0aaa1111: InsufficientInstanceCapacity/);
    expect(r.errors[0]!.message).toMatch(/spot m6i\.xlarge in subnet-0bbb2222: InsufficientInstanceCapacity/);
    expect(s.fake.calls.RunInstances).toBe(4);

    // Everything is benched now: the next create answers at once without calling EC2.
    const again = await s.provider.create(1, owner);
    expect(again.errors[0]).toBeInstanceOf(InsufficientCapacityError);
    expect(again.errors[0]!.message).toMatch(/cooling down/);
    expect(s.fake.calls.RunInstances).toBe(4);
  });

  it('a capacity error in some launches of one create call is a partial result', async () => {
    const s = setup({ config: { subnets: [SUBNET_A], instanceTypes: ['c6i.xlarge'] } });
    s.fake.failNext('RunInstances', 1, 'InsufficientInstanceCapacity');
    const r = await s.provider.create(3, owner);
    expect(r.machines.length + r.errors.length).toBe(3);
    expect(r.errors.every((e) => e instanceof InsufficientCapacityError)).toBe(true);
    expect(r.machines.length).toBeGreaterThanOrEqual(1);
  });
});

describe('ec2 provider: errors and retries', () => {
  it('retries throttling with backoff, with the same client token (no duplicate instance)', async () => {
    const s = setup();
    s.fake.failNext('RunInstances', 2, 'RequestLimitExceeded');
    await createOk(s);
    expect(s.fake.runInputs).toHaveLength(3);
    expect(new Set(s.fake.runInputs.map((i) => i.ClientToken)).size).toBe(1);
    expect(s.fake.live()).toHaveLength(1);
    expect(s.clock.sleeps.filter((ms) => ms >= 750)).toHaveLength(2);
  });

  it('gives up on throttling that does not end, as a retryable error', async () => {
    const s = setup();
    s.fake.failNext('RunInstances', 50, 'RequestLimitExceeded');
    const r = await s.provider.create(1, owner);
    expect(r.errors[0]).toBeInstanceOf(RetryableError);
    expect(r.errors[0]!.message).toMatch(/RequestLimitExceeded/);
    expect(s.fake.calls.RunInstances).toBe(5);
  });

  it('a permanent error is reported with AWS\'s message and not retried anywhere else', async () => {
    const s = setup();
    s.fake.failNext('RunInstances', 1, 'UnauthorizedOperation', 'You are not authorized to perform this operation.', 403);
    const r = await s.provider.create(1, owner);
    expect(r.errors[0]).toBeInstanceOf(PermanentError);
    expect(r.errors[0]!.message).toMatch(/UnauthorizedOperation: You are not authorized to perform this operation\./);
    expect(s.fake.calls.RunInstances).toBe(1);
  });

  it('an AMI parameter that does not exist is a permanent error', async () => {
    const s = setup({ config: { amiParameter: '/no/such/parameter' } });
    const r = await s.provider.create(1, owner);
    expect(r.errors[0]).toBeInstanceOf(PermanentError);
    expect(r.errors[0]!.message).toMatch(/\/no\/such\/parameter.*ParameterNotFound/);
    expect(s.fake.calls.RunInstances).toBe(0);
  });
});

describe('ec2 provider: terminate and list', () => {
  it('terminate is idempotent, skips unknown ids in a batch and keeps going', async () => {
    const s = setup();
    const [a, b] = await createOk(s, 2);
    expect(await s.provider.terminate([a!.id])).toEqual({ errors: [] });
    expect(await s.provider.terminate([a!.id])).toEqual({ errors: [] });
    // EC2 fails the whole call for one unknown id; the provider drops it and terminates the rest.
    expect(await s.provider.terminate(['i-00000000000000fff', b!.id, 'not-an-instance-id'])).toEqual({ errors: [] });
    expect(s.fake.instances.get(b!.id)!.state).toBe('shutting-down');
    expect(s.fake.live()).toHaveLength(0);
    await expect(s.provider.waitReady(b!)).rejects.toThrow(/is (shutting-down|terminated): it cannot be reached/);
  });

  it('terminates in batches of at most 1000 and reports failures per batch', async () => {
    const s = setup();
    const ids = Array.from({ length: 1500 }, () => s.fake.addInstance({ tags: { 'fleetrunner:fleet': 'test' } }).id);
    s.fake.failNext('TerminateInstances', 1, 'UnauthorizedOperation', 'not allowed', 403);
    const r = await s.provider.terminate(ids);
    expect(s.fake.terminateInputs.map((b) => b.length)).toEqual([1000, 500]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toBeInstanceOf(PermanentError);
    expect(s.fake.live()).toHaveLength(1000);
  });

  it('list sees only instances carrying the ownership tags asked for, page by page', async () => {
    const s = setup();
    const mine = await createOk(s, 2);
    s.fake.addInstance({ tags: { 'fleetrunner:fleet': 'other', 'fleetrunner:executor': 'dind', 'fleetrunner:coordinator': 'coord-1' } });
    s.fake.addInstance({ tags: { 'fleetrunner:fleet': 'test', 'fleetrunner:executor': 'other', 'fleetrunner:coordinator': 'coord-1' } });
    s.fake.addInstance({ tags: { Name: 'fleetrunner test/dind' } });
    s.fake.addInstance({ tags: { 'fleetrunner:fleet': 'test', 'fleetrunner:executor': 'dind', 'fleetrunner:coordinator': 'coord-1' }, state: 'terminated' });

    const listed = await s.provider.list({ fleet: 'test', executor: 'dind' });
    expect(listed.map((m) => m.id).sort()).toEqual(mine.map((m) => m.id).sort());
    expect(listed.every((m) => m.tags.coordinator === 'coord-1' && m.executor === 'dind')).toBe(true);
    expect((await s.provider.list({ fleet: 'test' })).length).toBe(3);
    expect(await s.provider.list({ fleet: 'test', coordinator: 'coord-2' })).toEqual([]);

    for (let i = 0; i < 1200; i++) s.fake.addInstance({ tags: { 'fleetrunner:fleet': 'big', 'fleetrunner:executor': 'x', 'fleetrunner:coordinator': 'c' } });
    const before = s.fake.calls.DescribeInstances;
    expect(await s.provider.list({ fleet: 'big' })).toHaveLength(1200);
    expect(s.fake.calls.DescribeInstances - before).toBe(2);
    expect(s.fake.describeInputs.at(-1)!.Filters).toContainEqual({ Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] });
  });

  it('maps EC2 states onto machine states (a stopped instance is on its way out)', async () => {
    const s = setup();
    const [m] = await createOk(s);
    expect(m!.state).toBe('pending');
    await s.provider.waitReady(m!);
    const running = await s.provider.list({ fleet: 'test' });
    expect(running[0]).toMatchObject({ id: m!.id, state: 'running' });
    expect(running[0]!.connection?.hostPublicKey).toMatch(/^ssh-ed25519 /);
    s.fake.setState(m!.id, 'stopped');
    expect((await s.provider.list({ fleet: 'test' }))[0]).toMatchObject({ id: m!.id, state: 'stopping' });
  });
});

describe('ec2 provider: readiness', () => {
  it('an instance that never runs is terminated at the boot timeout, with a clear error', async () => {
    const s = setup({ fake: { pendingDescribes: Infinity } });
    const [m] = await createOk(s);
    const err = await s.provider.waitReady(m!).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toMatch(/EC2 instance i-\w+ \(on-demand c6i\.xlarge in subnet-0aaa1111\) was not ready within 120 s: .*still pending.*; terminated it/);
    expect(s.fake.instances.get(m!.id)!.state).toBe('shutting-down');
    // Polls back off from 2 s to 10 s: about 15 calls in 120 s, not 60.
    expect(s.fake.calls.DescribeInstances).toBeLessThanOrEqual(20);
  });

  it('a readiness probe that never passes ends in termination with its last error', async () => {
    let attempts = 0;
    const s = setup({
      provider: {
        readinessProbe: async () => {
          attempts++;
          throw new Error('Cannot connect to the Docker daemon');
        },
      },
    });
    const [m] = await createOk(s);
    await expect(s.provider.waitReady(m!)).rejects.toThrow(/not ready within 120 s: readiness check never passed, last: Cannot connect to the Docker daemon; terminated it/);
    expect(attempts).toBeGreaterThan(10);
    expect(s.fake.instances.get(m!.id)!.state).toBe('shutting-down');
  });

  it('waits for the probe to pass and hands it the pinned connection', async () => {
    const seen: ConnectionInfo[] = [];
    let attempts = 0;
    const s = setup({
      provider: {
        readinessProbe: async (c) => {
          seen.push(c);
          if (++attempts < 3) throw new Error('docker not yet');
        },
      },
    });
    const [m] = await createOk(s);
    const info = await s.provider.waitReady(m!);
    expect(attempts).toBe(3);
    expect(seen.every((c) => c.hostPublicKey === info.hostPublicKey)).toBe(true);
  });

  it('a spot instance taken back during boot fails readiness and benches its pool', async () => {
    const s = setup({ config: { spot: true, subnets: [SUBNET_A], instanceTypes: ['c6i.xlarge'], onDemandFallback: false } });
    const [m] = await createOk(s);
    s.fake.setState(m!.id, 'terminated', { Code: 'Server.InsufficientInstanceCapacity', Message: 'insufficient capacity' });
    await expect(s.provider.waitReady(m!)).rejects.toThrow(/went terminated while booting \(Server\.InsufficientInstanceCapacity/);
    const r = await s.provider.create(1, owner);
    expect(r.errors[0]).toBeInstanceOf(InsufficientCapacityError);
  });

  it('machines booting together share DescribeInstances calls', async () => {
    const s = setup({ fake: { pendingDescribes: 3 } });
    const ms = await createOk(s, 6);
    const before = s.fake.calls.DescribeInstances;
    await Promise.all(ms.map((m) => s.provider.waitReady(m)));
    const calls = s.fake.calls.DescribeInstances - before;
    expect(calls).toBeLessThan(6 * 4);
    expect(s.fake.describeInputs.some((i) => (i.Filters?.find((f) => f.Name === 'instance-id')?.Values?.length ?? 0) > 1)).toBe(true);
  });

  it('shutdown stops the waiting', async () => {
    const s = setup({ fake: { pendingDescribes: Infinity } });
    const [m] = await createOk(s);
    const waiting = s.provider.waitReady(m!).catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    await s.provider.shutdown();
    expect(String(await waiting)).toMatch(/shut down/);
  });
});
