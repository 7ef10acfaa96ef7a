// Markets through the ec2 provider against the fake EC2: create(…, { market: 'on-demand' }) (a job run again
// after a spot interruption) and the spot circuit breaker's hook launch on-demand even where spot is
// configured; the user data carries the watchdog limits; instances terminate on an OS shutdown.

import { describe, expect, it } from 'vitest';

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
    maxMachines: 4
    ec2:
      subnets: [subnet-0aaa1111, subnet-0bbb2222]
      instanceTypes: [c6i.xlarge]
      spot: true
${extra}`).executors[0]!.ec2!;
}

const okProbe: ReadinessProbe = async () => undefined;
const owner: OwnershipTags = { fleet: 'test', executor: 'dind', coordinator: 'coord-1' };

function setup(c: Ec2ProviderConfig, onDemandOnly?: () => boolean) {
  const clock = new VirtualClock();
  const fake = new FakeEc2({ now: () => clock.now() });
  const provider = new Ec2Provider({
    clients: fake,
    config: c,
    executor: 'dind',
    fleet: 'test',
    bootTimeoutMs: 120_000,
    clock,
    random: () => 0.5,
    readinessProbe: okProbe,
    generateKeyPair: (comment) => generateEd25519(comment),
    ...(onDemandOnly && { onDemandOnly }),
  });
  return { fake, provider };
}

const market = (i: { InstanceMarketOptions?: unknown }) => (i.InstanceMarketOptions ? 'spot' : 'on-demand');

describe('ec2 provider: markets', () => {
  it('launches on-demand when asked, spot otherwise', async () => {
    const { fake, provider } = setup(config());
    expect((await provider.create(1, owner)).errors).toEqual([]);
    expect((await provider.create(1, owner, { market: 'on-demand' })).errors).toEqual([]);
    expect(fake.runInputs.map(market)).toEqual(['spot', 'on-demand']);
    expect(fake.runInputs.every((i) => i.InstanceInitiatedShutdownBehavior === 'terminate')).toBe(true);
  });

  it('launches on-demand even without on-demand fallback configured', async () => {
    const { fake, provider } = setup(config('      onDemandFallback: false\n'));
    expect((await provider.create(1, owner, { market: 'on-demand' })).errors).toEqual([]);
    expect(fake.runInputs.map(market)).toEqual(['on-demand']);
  });

  it('launches on-demand while the spot circuit breaker is open', async () => {
    let open = true;
    const { fake, provider } = setup(config(), () => open);
    await provider.create(1, owner);
    open = false;
    await provider.create(1, owner);
    expect(fake.runInputs.map(market)).toEqual(['on-demand', 'spot']);
  });

  it('puts the watchdog limits into the user data', async () => {
    const { fake, provider } = setup(config('      watchdog: { idleTimeout: 20m, maxLifetime: 12h }\n'));
    await provider.create(1, owner);
    const userData = Buffer.from(fake.runInputs[0]!.UserData!, 'base64').toString('utf8');
    expect(userData).toContain('idle_timeout=${FLEETRUNNER_WATCHDOG_IDLE_TIMEOUT:-1200}');
    expect(userData).toContain('max_lifetime=${FLEETRUNNER_WATCHDOG_MAX_LIFETIME:-43200}');
  });
});
