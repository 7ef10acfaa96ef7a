// The default readiness probe: one SSH login with the host key pinned to the one this instance was given,
// then `docker info` (Docker answering is the last step of the bootstrap, so it means the machine is done).
// One attempt per call; Ec2Provider.waitReady repeats it until the boot timeout.
//
// Written on ssh2 directly rather than on executors/ssh-connection.ts: providers may import only core/, and
// a probe must treat a host-key mismatch differently. For an executor a wrong key is fatal at once; during
// boot it can be the AMI's own key for the moment before cloud-init installs ours, so the probe keeps trying
// (nothing is sent before the key is verified) and the mismatch is reported only if it outlasts the boot.

import ssh2, { Client, type ServerHostKeyAlgorithm } from 'ssh2';

import { PermanentError } from '../../core/errors.js';
import type { ConnectionInfo } from '../../core/machine.js';

// ssh2 is CommonJS: Node's ESM loader exposes `utils` only on the default export.
const { utils } = ssh2;

/** One readiness check of a machine, within `timeoutMs`; rejects with the reason when it is not ready (yet). */
export type ReadinessProbe = (connection: ConnectionInfo, o: { signal: AbortSignal; timeoutMs: number }) => Promise<void>;

export interface SshProbeOptions {
  /** Must exit 0 on a ready machine. Default `docker info`. */
  command?: string;
  /** Bound of one attempt (TCP, handshake, login, command), if the boot deadline is not nearer. Default 15 s. */
  attemptTimeoutMs?: number;
}

export class HostKeyNotPinnedError extends Error {}

function pinnedKey(hostPublicKey: string): { blob: Buffer; type: ServerHostKeyAlgorithm } {
  const parsed = utils.parseKey(hostPublicKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new PermanentError(`invalid host public key: ${key instanceof Error ? key.message : 'empty'}`);
  return { blob: key.getPublicSSH(), type: key.type as ServerHostKeyAlgorithm };
}

export function sshReadinessProbe(o: SshProbeOptions = {}): ReadinessProbe {
  const command = o.command ?? 'docker info';
  return (c, { signal, timeoutMs: left }) =>
    new Promise<void>((resolve, reject) => {
      const timeoutMs = Math.max(1, Math.min(o.attemptTimeoutMs ?? 15_000, left));
      const pin = pinnedKey(c.hostPublicKey);
      const client = new Client();
      let presented: Buffer | undefined;
      let settled = false;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        client.removeAllListeners();
        client.on('error', () => undefined);
        client.end();
        if (err && presented && !presented.equals(pin.blob)) {
          reject(new HostKeyNotPinnedError(`${c.host}:${c.port} presented a host key other than the one this instance was given`));
        } else if (err) reject(err);
        else resolve();
      };
      const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      // I/O bound, not domain time: a real timer, like ssh2's own readyTimeout.
      const timer = setTimeout(() => finish(new Error(`no answer from ${c.host}:${c.port} within ${timeoutMs} ms`)), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });

      client.on('error', (e: Error) => finish(e));
      client.on('close', () => finish(new Error(`connection to ${c.host}:${c.port} closed`)));
      client.on('ready', () => {
        client.exec(command, (err, ch) => {
          if (err) return finish(err);
          let stderr = '';
          let code: number | undefined;
          ch.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-400)));
          ch.on('data', () => undefined); // drain stdout
          ch.on('exit', (exitCode: number | null) => (code = exitCode ?? undefined));
          ch.on('close', () => {
            if (code === 0) finish();
            else finish(new Error(`"${command}" exited with ${code ?? 'a signal'}${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`));
          });
        });
      });
      client.connect({
        host: c.host,
        port: c.port,
        username: c.username,
        privateKey: c.privateKey,
        readyTimeout: timeoutMs,
        algorithms: { serverHostKey: [pin.type] },
        hostVerifier: (key: Buffer) => {
          presented = Buffer.from(key);
          return presented.equals(pin.blob);
        },
      });
    });
}
