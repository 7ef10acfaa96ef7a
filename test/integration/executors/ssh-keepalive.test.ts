// Keepalives only on a quiet connection, over real SSH: bytes from the machine put ssh2's pings off; once
// the connection is quiet they come as before. Also the guard for the two ssh2 internals this relies on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { silentLogger, systemClock } from '../../../src/core/index.js';
import { connectSsh, type SshConnection } from '../../../src/executors/ssh-connection.js';
import { quietKeepaliveCount } from '../../../src/executors/ssh-keepalive.js';
import { startMachine, type TestMachine } from './harness.js';

// The sweep runs twice per interval: a gap in the machine's output longer than half of it (a loaded CI
// host) can let one ping through, which the assertions allow.
const INTERVAL_MS = 600;

let m: TestMachine;
beforeAll(async () => {
  m = await startMachine();
});
afterAll(async () => {
  await m?.dispose();
});

/** Counts the pings ssh2 sends on the connection from now on. */
function countPings(conn: SshConnection): { readonly n: number } {
  const client = (conn as unknown as { client: { _protocol: { ping: () => void } } }).client;
  const proto = client._protocol;
  const ping = proto.ping.bind(proto);
  const counter = { n: 0 };
  proto.ping = () => {
    counter.n++;
    ping();
  };
  return counter;
}

function streamFor(conn: SshConnection, command: string): Promise<number> {
  return conn.exec(command).then(
    (ch) =>
      new Promise<number>((resolve) => {
        let lines = 0;
        ch.on('data', (d: Buffer) => (lines += d.toString().split('\n').length - 1));
        ch.stderr.resume();
        ch.on('close', () => resolve(lines));
      }),
  );
}

describe('keepalives on a quiet connection only', () => {
  it('sends none while the machine sends bytes, and resumes when it stops', async () => {
    const before = quietKeepaliveCount();
    const conn = await connectSsh(m.info, { connectTimeoutMs: 10_000, keepaliveIntervalMs: INTERVAL_MS, keepaliveCountMax: 3, clock: systemClock, logger: silentLogger });
    try {
      // ssh2's socket and keepalive restart are there (this fails if an ssh2 upgrade took them away).
      expect(quietKeepaliveCount()).toBe(before + 1);
      const pings = countPings(conn);
      // 3 s of a line every 0.1 s: without this, ssh2 would ping about five times.
      expect(await streamFor(conn, 'for i in $(seq 30); do echo x; sleep 0.1; done')).toBe(30);
      const whileBusy = pings.n;
      expect(whileBusy).toBeLessThanOrEqual(1);
      // Quiet: pings come again, about one an interval (each answered, so the connection stays).
      const deadline = Date.now() + 5_000;
      while (pings.n - whileBusy < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(pings.n - whileBusy).toBeGreaterThanOrEqual(3);
      expect(conn.lost).toBeUndefined();
    } finally {
      conn.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(quietKeepaliveCount()).toBe(before);
  });
});
