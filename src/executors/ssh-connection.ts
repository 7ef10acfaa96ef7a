// One SSH connection to a machine: retried until the machine answers (bounded), host key pinned to
// ConnectionInfo.hostPublicKey (never trust on first use), keepalives so a lost machine is noticed (only
// while the connection is quiet: ssh-keepalive.ts).

import ssh2, { Client, type ClientChannel, type ServerHostKeyAlgorithm } from 'ssh2';
import { ControlShell } from './control-shell.js';
import { keepaliveWhenQuiet } from './ssh-keepalive.js';

// ssh2 is CommonJS: Node's ESM loader exposes `utils` only on the default export.
const { utils } = ssh2;

import {
  MachineLostError,
  PermanentError,
  errorMessage,
  silentLogger,
  systemClock,
  type Clock,
  type ConnectionInfo,
  type Logger,
} from '../core/index.js';

/** The machine presented a host key other than the one we expect. Never retried. */
export class HostKeyMismatchError extends PermanentError {}

/** The machine did not accept an SSH connection within the connect budget. */
export class SshConnectError extends PermanentError {}

export interface SshConnectOptions {
  /** Total budget for all attempts. */
  connectTimeoutMs: number;
  /** Bound of one attempt (TCP + handshake + auth). Default 10 s. */
  attemptTimeoutMs?: number;
  /** Pause between attempts. Default 500 ms. */
  retryDelayMs?: number;
  /** Default 5 s. */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection counts as lost. Default 3. */
  keepaliveCountMax?: number;
  clock?: Clock;
  logger?: Logger;
  signal?: AbortSignal;
}

interface PinnedKey {
  blob: Buffer;
  /** The host key algorithms to offer; undefined: ssh2's default offer (see pinnedKey). */
  algorithms: ServerHostKeyAlgorithm[] | undefined;
}

function pinnedKey(hostPublicKey: string): PinnedKey {
  const parsed = utils.parseKey(hostPublicKey);
  if (parsed instanceof Error) throw new PermanentError(`invalid host public key: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) throw new PermanentError('invalid host public key: empty');
  const type = key.type;
  // A server with several host keys must show the pinned one. The client's first choice that the server
  // has is the one used (RFC 4253 §7.1), so for most types the offer names the pinned key's algorithm
  // only. ssh-ed25519 (every key fleetrunner gives a machine) is first in ssh2's default offer already:
  // there the defaults show the pinned key too, and they are one offer shared by every connection, where
  // a list of our own makes ssh2 build one per connection (4.5 KiB, held as long as the connection). A
  // machine without the pinned ed25519 key now shows another key and fails as a mismatch, at once, rather
  // than with a handshake error retried until the connect timeout; both mean it is not our machine.
  const algorithms: ServerHostKeyAlgorithm[] | undefined =
    type === 'ssh-ed25519' ? undefined : type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type as ServerHostKeyAlgorithm];
  // A copy of its own: a small Buffer is a slice of Node's shared 8 KiB pool, and one kept for the whole
  // connection would keep the whole slab.
  const blob = key.getPublicSSH();
  const own = Buffer.allocUnsafeSlow(blob.length);
  blob.copy(own);
  return { blob: own, algorithms };
}

/** An open connection. `exec` opens a channel; `lost` tells whether the machine went away. */
export class SshConnection {
  private lostErr: MachineLostError | undefined;
  private tmpDir: Promise<string> | undefined;
  private closing = false;
  private readonly lostListeners = new Set<(e: MachineLostError) => void>();
  private controlShell: ControlShell | undefined;
  /** A channel opened ahead of need (openAhead), with whether it has closed since. */
  private ahead: { command: string; channel: Promise<ClientChannel>; closed: boolean } | undefined;

  constructor(
    private readonly client: Client,
    readonly target: string,
    private readonly clock: Clock = systemClock,
  ) {
    let lastError: Error | undefined;
    client.on('error', (e: Error) => {
      lastError = e;
    });
    client.on('close', () => {
      if (this.closing) return;
      const why = lastError ? `: ${lastError.message}` : '';
      this.markLost(new MachineLostError(`lost SSH connection to ${target}${why}`));
    });
  }

  get lost(): MachineLostError | undefined {
    return this.lostErr;
  }

  /** Called once when the connection drops unexpectedly (immediately if it already has). Returns an unsubscribe. */
  onLost(listener: (e: MachineLostError) => void): () => void {
    if (this.lostErr) {
      listener(this.lostErr);
      return () => undefined;
    }
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  /** Opens an exec channel (no pty). Rejects with MachineLostError when the connection is gone. */
  exec(command: string): Promise<ClientChannel> {
    if (this.lostErr) return Promise.reject(this.lostErr);
    return new Promise((resolve, reject) => {
      const off = this.onLost(reject);
      this.client.exec(command, (err, channel) => {
        off();
        if (err) reject(this.lostErr ?? err);
        else resolve(channel);
      });
    });
  }

  /** Opens a channel for `command` now, kept for the next takeAhead(command): an idle machine's connection
   *  has its first stage shell started before a job comes (machine-connections.ts). One at a time. */
  openAhead(command: string): void {
    if (this.lostErr || this.ahead) return;
    const held = { command, channel: this.exec(command), closed: false };
    // 'exit' (the remote command ended) comes even while nobody reads the channel; 'close' may wait for that.
    const ended = () => (held.closed = true);
    void held.channel.then((ch) => ch.once('exit', ended).once('close', ended), ended);
    this.ahead = held;
  }

  /** The channel opened ahead for `command` (handed over: the caller ends it), unless it has closed. */
  takeAhead(command: string): Promise<ClientChannel> | undefined {
    const held = this.ahead;
    if (!held || held.command !== command) return undefined;
    this.ahead = undefined;
    if (!held.closed) return held.channel;
    void held.channel.then((ch) => ch.end(), () => undefined);
    return undefined;
  }

  /** The machine's temporary directory ($TMPDIR, else /tmp) as the SSH user sees it; asked once per connection. */
  remoteTmpDir(): Promise<string> {
    this.tmpDir ??= this.output(`printf '%s\\n' "\${TMPDIR:-/tmp}"`).then((out) => {
      const dir = out.split('\n')[0] ?? '';
      if (!dir.startsWith('/')) throw new Error(`the machine reported no usable temporary directory: ${JSON.stringify(out.slice(0, 200))}`);
      return dir.replace(/\/+$/, '') || '/';
    });
    return this.tmpDir;
  }

  /** Runs a short housekeeping command and resolves with its stdout; rejects on a non-zero exit. */
  async output(command: string): Promise<string> {
    const ch = await this.exec(command);
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      const off = this.onLost(reject);
      ch.on('data', (d: Buffer) => (out += d.toString('utf8')));
      ch.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      ch.on('close', (code?: number | null, signal?: string) => {
        off();
        if (code === 0) return resolve(out);
        const how = typeof code === 'number' ? `exit ${code}` : signal ? `signal ${signal}` : 'no exit status';
        reject(new Error(`housekeeping command failed (${how}): ${(err || out).trim()}`));
      });
    });
  }

  /** Runs a short housekeeping command (stdout only, stderr dropped) through the connection's long-lived
   *  control shell instead of a channel of its own (control-shell.ts): for what a running job sends every
   *  few seconds. Rejects on a non-zero exit, and with MachineLostError when the connection is gone. */
  async control(command: string): Promise<string> {
    if (this.lostErr) throw this.lostErr;
    this.controlShell ??= new ControlShell((c) => this.exec(c), { clock: this.clock });
    try {
      return await this.controlShell.run(command);
    } catch (e) {
      throw this.lostErr ?? e;
    }
  }

  close(): void {
    this.closing = true;
    this.controlShell?.close();
    void this.ahead?.channel.then((ch) => ch.end(), () => undefined);
    this.ahead = undefined;
    this.client.end();
  }

  private markLost(e: MachineLostError): void {
    if (this.lostErr) return;
    this.lostErr = e;
    for (const l of [...this.lostListeners]) l(e);
    this.lostListeners.clear();
  }
}

/** Errors after the handshake belong to the SshConnection (or to nobody, once we gave up). */
const ignoreError = (): void => undefined;

/** The host key check ssh2 keeps for the connection's life (it checks again at every re-key). Made out
 *  here, not in attempt(): a closure keeps the scope it was made in, and attempt's holds the connect
 *  options, their abort signal and the handshake's callbacks, which would then live as long as the
 *  connection too. */
function pinVerifier(pin: PinnedKey): { verify: (key: Buffer) => boolean; mismatched: boolean } {
  const v = {
    /** The machine presented a key and it was not the pinned one. */
    mismatched: false,
    verify: (key: Buffer): boolean => {
      const ok = Buffer.isBuffer(key) && key.equals(pin.blob);
      if (!ok) v.mismatched = true;
      return ok;
    },
  };
  return v;
}

function attempt(info: ConnectionInfo, pin: PinnedKey, timeoutMs: number, o: SshConnectOptions): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const verifier = pinVerifier(pin);
    let settled = false;
    const onAbort = () => fail(o.signal?.reason instanceof Error ? o.signal.reason : new Error('aborted'));
    const settle = () => {
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      client.removeAllListeners();
      client.on('error', ignoreError);
    };
    const fail = (e: Error) => {
      if (settled) return;
      settle();
      client.end();
      if (verifier.mismatched) {
        reject(new HostKeyMismatchError(`host key of ${info.host}:${info.port} does not match the expected key`));
      } else reject(e);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      settle();
      resolve(client);
    });
    client.on('error', fail);
    client.on('close', () => fail(new Error('connection closed during the handshake')));
    try {
      connect();
      // Before the handshake, not after: its small packets wait on each other under Nagle's algorithm and
      // the peer's delayed ACKs (measured on loopback: 105 ms to ready with it, 60 ms without).
      client.setNoDelay(true);
    } catch (e) {
      // ssh2 throws synchronously on a key it cannot parse: settle, so the abort listener goes too.
      fail(e instanceof Error ? e : new Error(String(e)));
    }
    function connect() {
      client.connect({
        host: info.host,
        port: info.port,
        username: info.username,
        privateKey: info.privateKey,
        readyTimeout: timeoutMs,
        keepaliveInterval: o.keepaliveIntervalMs ?? 5_000,
        keepaliveCountMax: o.keepaliveCountMax ?? 3,
        ...(pin.algorithms && { algorithms: { serverHostKey: pin.algorithms } }),
        hostVerifier: verifier.verify,
      });
    }
  });
}

/** Connects, retrying until the machine answers or `connectTimeoutMs` is spent. A wrong host key fails at once. */
export async function connectSsh(info: ConnectionInfo, o: SshConnectOptions): Promise<SshConnection> {
  const clock = o.clock ?? systemClock;
  const log = (o.logger ?? silentLogger).child({ ssh: `${info.host}:${info.port}` });
  const pin = pinnedKey(info.hostPublicKey);
  const deadline = clock.now() + o.connectTimeoutMs;
  const target = `${info.username}@${info.host}:${info.port}`;
  for (let n = 1; ; n++) {
    o.signal?.throwIfAborted();
    const left = deadline - clock.now();
    try {
      const client = await attempt(info, pin, Math.max(500, Math.min(o.attemptTimeoutMs ?? 10_000, left)), o);
      log.debug({ attempts: n }, 'ssh connected');
      keepaliveWhenQuiet(client, o.keepaliveIntervalMs ?? 5_000);
      return new SshConnection(client, target, clock);
    } catch (e) {
      if (e instanceof PermanentError) throw e;
      const leftAfter = deadline - clock.now();
      if (leftAfter <= 0) {
        throw new SshConnectError(`ssh: could not connect to ${target} within ${o.connectTimeoutMs} ms: ${errorMessage(e)}`, {
          cause: e,
        });
      }
      log.debug({ attempt: n, err: errorMessage(e) }, 'ssh connect failed, retrying');
      await clock.sleep(Math.min(o.retryDelayMs ?? 500, leftAfter), o.signal);
    }
  }
}
