// Batched launches through the ec2 provider against the fake EC2 enforcing RunInstances' request bucket
// (AWS's published 5, refilled at 2 per second): a burst of machines costs a few calls, never a
// RequestLimitExceeded; the instances of one call share its host key; a call that launches fewer than
// asked sends the rest to the next pool; launchBatch 1 keeps one call per machine. Time is virtual.

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { parseConfigText, type Ec2ProviderConfig } from '../../../src/config/index.js';
import type { OwnershipTags } from '../../../src/core/index.js';
import { Ec2Provider, type ReadinessProbe } from '../../../src/providers/ec2/index.js';
import { generateEd25519 } from '../../../src/providers/ssh-keys.js';
import { FakeEc2 } from '../../helpers/fake-ec2.js';
import { testToken } from '../../helpers/tokens.js';
import { VirtualClock } from '../gitlab/helpers/virtual-clock.js';

function config(extra = ''): Ec2ProviderConfig {
  return parseConfigText(`gitlab: { url: https://gitlab.example.com, token: ${testToken('glrt-')} }
concurrent: 1
executors:
  - name: dind
    provider: ec2
    maxMachines: 400
    ec2:
      subnets: [subnet-0aaa1111, subnet-0bbb2222]
      instanceTypes: [c6i.xlarge]
${extra}`).executors[0]!.ec2!;
}

const okProbe: ReadinessProbe = async () => undefined;
const owner: OwnershipTags = { fleet: 'test', executor: 'dind', coordinator: 'coord-1' };

function setup(c: Ec2ProviderConfig) {
  const clock = new VirtualClock();
  const fake = new FakeEc2({ now: () => clock.now(), runInstancesRate: { burst: 5, perSecond: 2 } });
  const provider = new Ec2Provider({
    clients: fake, config: c, executor: 'dind', fleet: 'test', bootTimeoutMs: 120_000, clock, random: () => 0.5, readinessProbe: okProbe,
    generateKeyPair: (comment) => generateEd25519(comment),
  });
  return { fake, provider, clock };
}

const hostKeyOf = (userData: string) => (parseYaml(userData) as { ssh_keys: { ed25519_public: string } }).ssh_keys.ed25519_public;

describe('ec2 provider: batched launches', () => {
  it('launches 300 machines asked for at once in a few calls within the request rate, no throttling', async () => {
    const s = setup(config());
    const t0 = s.clock.now();
    const results = await Promise.all(Array.from({ length: 300 }, () => s.provider.create(1, owner)));
    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const ids = results.flatMap((r) => r.machines.map((m) => m.id));
    expect(new Set(ids).size).toBe(300);
    expect(s.fake.live()).toHaveLength(300);
    expect(s.fake.runInstancesThrottled).toBe(0);
    expect(s.fake.runInputs.length).toBeLessThanOrEqual(7); // 5 at once, then one per token
    expect(s.fake.runInputs.every((i) => (i.MaxCount ?? 0) <= 50 && i.MinCount === 1)).toBe(true);
    expect(s.clock.now() - t0).toBeLessThanOrEqual(1000);
  });

  it('gives the instances of one call its one host key, and each call its own', async () => {
    const s = setup(config());
    await Promise.all(Array.from({ length: 20 }, () => s.provider.create(1, owner)));
    const byCall = new Map<string, Set<string>>();
    for (const inst of s.fake.live()) {
      const token = inst.input.ClientToken!;
      (byCall.get(token) ?? byCall.set(token, new Set()).get(token)!).add(hostKeyOf(inst.userData));
      expect(inst.tags['fleetrunner:host-key']).toBe(hostKeyOf(inst.userData));
    }
    expect([...byCall.values()].every((keys) => keys.size === 1)).toBe(true);
    const keys = [...byCall.values()].map((k) => [...k][0]);
    expect(new Set(keys).size).toBe(byCall.size);
    expect(byCall.size).toBeGreaterThan(1);
  });

  it('sends each machine in a call of its own while the bucket has a token for each', async () => {
    const s = setup(config());
    const r = await s.provider.create(3, owner);
    expect(r.errors).toEqual([]);
    expect(s.fake.runInputs.map((i) => i.MaxCount)).toEqual([1, 1, 1]);
  });

  it('sends what a pool could not launch to the next pool', async () => {
    const s = setup(config());
    s.fake.failCapacity({ subnet: 'subnet-0aaa1111', available: 4 });
    const results = await Promise.all(Array.from({ length: 30 }, () => s.provider.create(1, owner)));
    expect(results.flatMap((r) => r.errors)).toEqual([]);
    const inA = s.fake.live().filter((i) => i.subnet === 'subnet-0aaa1111').length;
    expect(inA).toBe(4);
    expect(s.fake.live()).toHaveLength(30);
    expect(s.fake.runInstancesThrottled).toBe(0);
  });

  it('launchBatch: 1 keeps one call and one host key per machine (paced, so still no throttling)', async () => {
    const s = setup(config('      launchBatch: 1'));
    await Promise.all(Array.from({ length: 12 }, () => s.provider.create(1, owner)));
    expect(s.fake.runInputs).toHaveLength(12);
    expect(s.fake.runInputs.every((i) => i.MaxCount === 1)).toBe(true);
    expect(new Set(s.fake.live().map((i) => hostKeyOf(i.userData))).size).toBe(12);
    expect(s.fake.runInstancesThrottled).toBe(0);
  });

  it('a permanent error fails every machine of the call with AWS\'s message', async () => {
    const s = setup(config());
    s.fake.deny('ec2:RunInstances');
    const results = await Promise.all(Array.from({ length: 10 }, () => s.provider.create(1, owner)));
    const errors = results.flatMap((r) => r.errors);
    expect(errors).toHaveLength(10);
    expect(errors.every((e) => /UnauthorizedOperation/.test(e.message))).toBe(true);
  });
});
