// Boots a stand-in for an EC2 instance: a real sshd on 127.0.0.1 started with the host key and authorized
// key found in the user data the ec2 provider rendered, as cloud-init would install them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { systemClock } from '../../src/core/index.js';
import { renderSshdConfig } from '../../src/providers/local/sshd-config.js';
import { ensurePrivsepDir, startSshd, waitForSshAnswer } from '../../src/providers/local/sshd-process.js';

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
