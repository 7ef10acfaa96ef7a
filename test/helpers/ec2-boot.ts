// Boots a stand-in for an EC2 instance: a real sshd (on 127.0.0.1 or the instance's loopback address) started with the host key and authorized
// key found in the user data the ec2 provider rendered, as cloud-init would install them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { systemClock, type CapacityProvider, type Ec2ProviderConfig } from '../../src/core/index.js';
import { Ec2Provider, sshReadinessProbe } from '../../src/providers/ec2/index.js';
import { renderSshdConfig } from '../../src/providers/local/sshd-config.js';
import { ensurePrivsepDir, startSshd, waitForSshAnswer } from '../../src/providers/local/sshd-process.js';
import type { FakeEc2 } from './fake-ec2.js';

interface UserDataDoc {
  ssh_keys: { ed25519_private: string; ed25519_public: string };
  write_files: Array<{ path: string; content: string }>;
}

/** Starts sshd on `port` with the keys from `userData` (or another host key, to play an impostor). Returns its pid. */
export async function bootFromUserData(root: string, name: string, userData: string, port: number, overrideHostKey?: string, listenAddress = '127.0.0.1'): Promise<number> {
  const doc = parseYaml(userData) as UserDataDoc;
  const dir = join(root, name);
  mkdirSync(join(dir, 'home'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  writeFileSync(join(dir, 'ssh_host_ed25519_key'), overrideHostKey ?? doc.ssh_keys.ed25519_private, { mode: 0o600 });
  writeFileSync(join(dir, 'authorized_keys'), doc.write_files.find((f) => f.path === '/etc/fleetrunner/authorized_keys')!.content, { mode: 0o600 });
  writeFileSync(
    join(dir, 'sshd_config'),
    renderSshdConfig({
      listenAddress,
      port,
      hostKeyFile: join(dir, 'ssh_host_ed25519_key'),
      authorizedKeysFile: join(dir, 'authorized_keys'),
      username: userInfo().username,
      machineId: name,
      tmpDir: join(dir, 'tmp'),
      homeDir: join(dir, 'home'),
    }),
    { mode: 0o600 },
  );
  await ensurePrivsepDir();
  const pid = await startSshd({ sshdPath: '/usr/sbin/sshd', configFile: join(dir, 'sshd_config'), logFile: join(dir, 'sshd.log') });
  await waitForSshAnswer({ host: listenAddress, port, deadline: Date.now() + 10_000, clock: systemClock, stillRunning: async () => true });
  return pid;
}

/** Stops the stand-in instances a test booted. */
export function stopBooted(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
}

export interface BootingEc2Options {
  ec2: FakeEc2;
  config: Ec2ProviderConfig;
  executor: string;
  fleet: string;
  /** Every instance's sshd listens on its private IP (from the fake EC2) and this port. */
  port: number;
  /** Where instances keep their files; each gets builds/ and cache/ here, as /builds and /cache on EC2. */
  root: string;
  /** Pids of the sshd processes started, for stopBooted. */
  pids: number[];
}

/**
 * The ec2 provider on the fake EC2, plus what AWS and cloud-init would do after RunInstances: each new
 * instance "boots" as a real sshd from the user data the provider rendered. Readiness runs `true` over SSH
 * instead of `docker info` (the docker style has its own end-to-end tests).
 */
export function bootingEc2Provider(o: BootingEc2Options): CapacityProvider {
  const inner = new Ec2Provider({
    clients: o.ec2,
    config: o.config,
    executor: o.executor,
    fleet: o.fleet,
    bootTimeoutMs: 20_000,
    clock: systemClock,
    sshPort: o.port,
    pollIntervalMs: { min: 50, max: 200 },
    probeIntervalMs: 100,
    readinessProbe: sshReadinessProbe({ command: 'true', attemptTimeoutMs: 3_000 }),
  });
  return {
    name: inner.name,
    create: async (n, tags) => {
      const r = await inner.create(n, tags);
      for (const m of r.machines) {
        const instance = o.ec2.live().find((i) => i.id === m.id)!;
        const userData = Buffer.from(o.ec2.runInputs.at(-1)!.UserData!, 'base64').toString('utf8');
        o.pids.push(await bootFromUserData(o.root, m.id, userData, o.port, undefined, instance.privateIp));
      }
      return r;
    },
    list: (t) => inner.list(t),
    waitReady: async (m, s) => ({ ...(await inner.waitReady(m, s)), buildsDir: join(o.root, 'builds'), cacheDir: join(o.root, 'cache') }),
    terminate: (ids) => inner.terminate(ids),
    label: (id, labels) => inner.label(id, labels),
    shutdown: () => inner.shutdown(),
  };
}
