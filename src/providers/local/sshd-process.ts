// Starting a machine's sshd and telling when it answers.

import { spawn } from 'node:child_process';
import { mkdir, open, readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';

import type { Clock } from '../../core/index.js';

/** sshd refuses to start without its privilege separation directory. */
export async function ensurePrivsepDir(): Promise<void> {
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }).catch(() => undefined);
}

/** A loopback port nobody listens on right now (sshd may still lose a race for it: callers retry). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export interface SshdLaunch {
  sshdPath: string;
  configFile: string;
  logFile: string;
  /** Run inside this network namespace (`ip netns exec`, which execs: the pid is sshd's). */
  netns?: string;
  /** `-r`: the connection is served by a fork of the listener, not a new sshd started for it (OpenSSH
   *  calls it a debugging aid). Only for a bench's many machines sharing one sshd: a re-exec per
   *  connection halved how many handshakes a second a small host completes. */
  noReexec?: boolean;
}

/** Starts `sshd -D -e -f <config>` detached from us, so it outlives a coordinator restart. Returns its pid. */
export async function startSshd(l: SshdLaunch): Promise<number> {
  const log = await open(l.logFile, 'a', 0o600);
  try {
    const sshdArgs = [l.sshdPath, '-D', '-e', ...(l.noReexec ? ['-r'] : []), '-f', l.configFile];
    const [cmd, ...args] = l.netns ? ['ip', 'netns', 'exec', l.netns, ...sshdArgs] : sshdArgs;
    const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', log.fd, log.fd] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    if (child.pid === undefined) throw new Error('sshd did not start');
    return child.pid;
  } finally {
    await log.close();
  }
}

/** One attempt: connect and read the "SSH-2.0-…" identification line. */
export function readSshBanner(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let buf = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf.split('\n')[0]!.trim());
    };
    const timer = setTimeout(() => done(new Error(`no SSH banner from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) done(buf.startsWith('SSH-') ? undefined : new Error(`not an SSH server: ${host}:${port}`));
    });
    sock.once('error', (e) => done(e));
    sock.once('close', () => done(new Error(`connection to ${host}:${port} closed before the SSH banner`)));
  });
}

export interface WaitAnswerOptions {
  host: string;
  port: number;
  deadline: number;
  clock: Clock;
  /** Resolves false once the server process is gone: waiting longer is pointless. */
  stillRunning: () => Promise<boolean>;
  signal?: AbortSignal;
}

/** Polls until the server sends its banner; throws when it dies, the deadline passes or `signal` aborts. */
export async function waitForSshAnswer(o: WaitAnswerOptions): Promise<void> {
  let last: unknown;
  for (;;) {
    o.signal?.throwIfAborted();
    const left = o.deadline - o.clock.now();
    if (left <= 0) throw new Error(`SSH on ${o.host}:${o.port} did not answer in time: ${(last as Error)?.message ?? 'no attempt'}`);
    try {
      await readSshBanner(o.host, o.port, Math.min(2000, Math.max(100, left)));
      return;
    } catch (e) {
      last = e;
    }
    if (!(await o.stillRunning())) throw new Error(`sshd for ${o.host}:${o.port} exited`);
    await o.clock.sleep(100, o.signal);
  }
}

/** Last lines of a log file, for error messages. */
export async function logTail(file: string, lines = 5): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trim().split('\n').slice(-lines).join(' | ');
  } catch {
    return '';
  }
}
