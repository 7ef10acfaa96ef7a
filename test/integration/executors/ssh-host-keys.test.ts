// The pinned host key on a machine whose sshd has several (an image's own ECDSA key beside the ed25519
// key fleetrunner installs): the connection asks for the pinned key's algorithm and gets it. For an
// ed25519 pin it offers ssh2's defaults, which list ed25519 first, so every such connection shares one
// offer instead of building its own (ssh-connection.ts, pinnedKey).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger, systemClock } from '../../../src/core/index.js';
import { connectSsh, type SshConnection } from '../../../src/executors/ssh-connection.js';
import { renderSshdConfig } from '../../../src/providers/local/sshd-config.js';
import { ensurePrivsepDir, freeLoopbackPort, startSshd, waitForSshAnswer } from '../../../src/providers/local/sshd-process.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-hostkeys-'));
let pid: number | undefined;
let port = 0;

/** A key pair made now, by ssh-keygen: [private key file's text, "type AAAA…" public key]. */
function keygen(type: string, name: string): [string, string] {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', '', '-f', join(dir, name)]);
  return [readFileSync(join(dir, name), 'utf8'), readFileSync(join(dir, `${name}.pub`), 'utf8').trim()];
}

let clientKey = '';
let ed25519Host = '';
let ecdsaHost = '';

beforeAll(async () => {
  let clientPub: string;
  [clientKey, clientPub] = keygen('ed25519', 'client');
  ed25519Host = keygen('ed25519', 'host_ed25519')[1];
  ecdsaHost = keygen('ecdsa', 'host_ecdsa')[1];
  writeFileSync(join(dir, 'authorized_keys'), `${clientPub}\n`, { mode: 0o600 });
  await ensurePrivsepDir();
  // Another process may take the free port before sshd binds it: then again on another.
  for (let attempt = 1; ; attempt++) {
    port = await freeLoopbackPort();
    try {
      await startOn(port);
      return;
    } catch (e) {
      if (pid !== undefined) process.kill(pid, 'SIGTERM');
      pid = undefined;
      if (attempt === 3) throw e;
    }
  }
});

async function startOn(on: number): Promise<void> {
  const config = renderSshdConfig({
    listenAddress: '127.0.0.1',
    port: on,
    // The image's own key first in sshd_config, ours added after it (the client's preference decides).
    hostKeyFile: join(dir, 'host_ecdsa'),
    authorizedKeysFile: join(dir, 'authorized_keys'),
    username: userInfo().username,
    machineId: 'hostkeys',
    tmpDir: dir,
    homeDir: dir,
  });
  writeFileSync(join(dir, 'sshd_config'), `${config}HostKey ${join(dir, 'host_ed25519')}\n`, { mode: 0o600 });
  pid = await startSshd({ sshdPath: '/usr/sbin/sshd', configFile: join(dir, 'sshd_config'), logFile: join(dir, 'sshd.log') });
  const started = pid;
  const alive = async (): Promise<boolean> => {
    try {
      process.kill(started, 0);
      return true;
    } catch {
      return false;
    }
  };
  await waitForSshAnswer({ host: '127.0.0.1', port: on, deadline: Date.now() + 10_000, clock: systemClock, stillRunning: alive });
}

afterAll(() => {
  if (pid !== undefined) process.kill(pid, 'SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

const connect = (hostPublicKey: string): Promise<SshConnection> =>
  connectSsh({ host: '127.0.0.1', port, username: userInfo().username, privateKey: clientKey, hostPublicKey, buildsDir: join(dir, 'builds'), cacheDir: join(dir, 'cache'), stateDir: join(dir, 'state') }, { connectTimeoutMs: 10_000, clock: systemClock, logger: silentLogger });

/** ssh2's KEXINIT offer of a connection (an internal: this fails if an ssh2 upgrade moved it). */
const offerOf = (conn: SshConnection): unknown => (conn as unknown as { client: { _protocol: { _offer: unknown } } }).client._protocol._offer;

describe('a pinned host key among several on the machine', () => {
  it('gets the ed25519 key it pinned, and its connections share one offer', async () => {
    const a = await connect(ed25519Host);
    const b = await connect(ed25519Host);
    try {
      expect((await a.output('echo ok')).trim()).toBe('ok');
      expect(offerOf(a)).toBeDefined();
      expect(offerOf(a)).toBe(offerOf(b));
    } finally {
      a.close();
      b.close();
    }
  });

  it('gets the ECDSA key it pinned (its offer names ECDSA only: the defaults would show ed25519 first)', async () => {
    const a = await connect(ecdsaHost);
    const b = await connect(ed25519Host);
    try {
      expect((await a.output('echo ok')).trim()).toBe('ok');
      expect(offerOf(a)).not.toBe(offerOf(b));
    } finally {
      a.close();
      b.close();
    }
  });
});
