// Pinning end to end: the user data the ec2 provider renders is parsed, a real sshd is started on 127.0.0.1
// with the host key and authorized key found in it, the fake EC2 reports 127.0.0.1 as the instance's
// address, and the provider's default SSH readiness probe (and then the executors' SSH client) must log in.
// A server with any other host key must never be accepted.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { parseConfigText } from '../../../src/config/index.js';
import { RetryableError, systemClock, type OwnershipTags } from '../../../src/core/index.js';
import { connectSsh } from '../../../src/executors/ssh-connection.js';
import { Ec2Provider, HostKeyNotPinnedError, sshReadinessProbe } from '../../../src/providers/ec2/index.js';
import { generateEd25519 } from '../../../src/providers/ssh-keys.js';
import { freeLoopbackPort } from '../../../src/providers/local/sshd-process.js';
import { bootFromUserData as bootFromEc2UserData } from '../../helpers/ec2-boot.js';
import { FakeEc2 } from '../../helpers/fake-ec2.js';

const root = mkdtempSync(join(tmpdir(), 'fr-ec2-ssh-'));
const sshdPids: number[] = [];

afterAll(() => {
  for (const pid of sshdPids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
});

const user = userInfo().username;
const owner: OwnershipTags = { fleet: 'ssh-test', executor: 'dind', coordinator: 'c1' };

function makeProvider(fake: FakeEc2, bootTimeoutMs: number, sshPort: number, keySecret?: Uint8Array): Ec2Provider {
  const config = parseConfigText(`gitlab: { url: https://gitlab.example.com, token: glrt-x }
concurrent: 1
executors:
  - name: dind
    provider: ec2
    maxMachines: 1
    ec2:
      subnets: [subnet-0aaa1111]
      instanceTypes: [c6i.xlarge]
      sshUser: ${user}
`).executors[0]!.ec2!;
  return new Ec2Provider({
    clients: fake,
    config,
    executor: 'dind',
    fleet: 'ssh-test',
    bootTimeoutMs,
    clock: systemClock,
    sshPort,
    pollIntervalMs: { min: 50, max: 200 },
    probeIntervalMs: 100,
    // The real probe; `true` instead of `docker info` because this host runs no Docker daemon.
    readinessProbe: sshReadinessProbe({ command: 'true', attemptTimeoutMs: 3_000 }),
    ...(keySecret && { keySecret }),
  });
}

async function bootFromUserData(name: string, userData: string, port: number, overrideHostKey?: string): Promise<void> {
  sshdPids.push(await bootFromEc2UserData(root, name, userData, port, overrideHostKey));
}

/** Launches one machine whose SSH port will be `port`; returns it with its decoded user data. */
async function launch(bootTimeoutMs: number, keySecret?: Uint8Array) {
  const port = await freeLoopbackPort();
  const fake = new FakeEc2({ pendingDescribes: 0, privateIp: () => '127.0.0.1' });
  const provider = makeProvider(fake, bootTimeoutMs, port, keySecret);
  const r = await provider.create(1, owner);
  expect(r.errors).toEqual([]);
  const userData = Buffer.from(fake.runInputs.at(-1)!.UserData!, 'base64').toString('utf8');
  return { fake, port, provider, machine: r.machines[0]!, userData };
}

async function run(info: Parameters<typeof connectSsh>[0], command: string): Promise<string> {
  const conn = await connectSsh(info, { connectTimeoutMs: 5_000 });
  try {
    const ch = await conn.exec(command);
    return await new Promise((resolve) => {
      let out = '';
      ch.on('data', (d: Buffer) => (out += d));
      ch.on('close', () => resolve(out));
    });
  } finally {
    conn.close();
  }
}

describe('ec2 provider: SSH pinned to the host key in the user data', () => {
  it('the readiness probe logs in to a server running with the rendered keys, and so does the executor', async () => {
    const m = await launch(10_000);
    await bootFromUserData('good', m.userData, m.port);
    const info = await m.provider.waitReady(m.machine);
    expect(info).toMatchObject({ host: '127.0.0.1', port: m.port, username: user });
    expect(await run(info, 'echo pinned')).toBe('pinned\n');
    await m.provider.terminate([m.machine.id]);
  });

  it('a server with another host key is never accepted: the machine times out and is terminated', async () => {
    const m = await launch(2_000);
    await bootFromUserData('impostor', m.userData, m.port, generateEd25519('impostor').private);
    const err = await m.provider.waitReady(m.machine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toMatch(/not ready within 2 s: .*presented a host key other than the one this instance was given; terminated it/);
    expect((err as Error & { cause?: { cause?: unknown } }).cause?.cause).toBeInstanceOf(HostKeyNotPinnedError);
    expect(m.fake.instances.get(m.machine.id)!.state).toBe('shutting-down');
  });
});

describe('ec2 provider: a successor process logs in to its predecessor\'s instance', () => {
  it('with the client key derived again from the fleet secret and the host key pinned from the tag', async () => {
    const secret = randomBytes(32);
    const m = await launch(10_000, secret);
    await bootFromUserData('inherited', m.userData, m.port);
    await m.provider.shutdown();
    // A new process: nothing in memory, only EC2's tags and the same fleet secret.
    const successor = makeProvider(m.fake, 10_000, m.port, secret);
    const [listed] = await successor.list({ fleet: owner.fleet });
    expect(listed!.unreachable).toBeUndefined();
    const info = await successor.waitReady(listed!);
    expect(info.hostPublicKey).toBe(m.fake.instances.get(m.machine.id)!.tags['fleetrunner:host-key']);
    expect(await run(info, 'echo inherited')).toBe('inherited\n');
    await successor.terminate([m.machine.id]);
  });

  it('another fleet secret is refused before any connection; a server presenting another host key than the tag names is never accepted', async () => {
    const secret = randomBytes(32);
    const m = await launch(2_000, secret);
    await bootFromUserData('inherited-impostor', m.userData, m.port, generateEd25519('impostor').private);
    const stranger = makeProvider(m.fake, 2_000, m.port, randomBytes(32));
    await expect(stranger.waitReady(m.machine)).rejects.toThrow(/cannot be reached by this coordinator: its key tags were not written by this deployment/);
    // The tags are genuine but the server presents another key: the pinned connection never completes.
    const successor = makeProvider(m.fake, 2_000, m.port, secret);
    const err = await successor.waitReady(m.machine).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/presented a host key other than the one this instance was given/);
  });
});
