// Keepalives only on quiet connections. ssh2 sends one every keepaliveInterval whatever arrives (it restarts
// its timer only on a keepalive's answer and on channel requests), so a job printing a line a second still
// costs a ping and its answer every 5 s: in the cost bench's profile at 100 jobs, the pings' socket writes
// alone were as much CPU as every trace PATCH. Bytes from the machine show it is there as well as an answer
// would: one sweep a second restarts ssh2's keepalive timer (and its count of unanswered ones) on every
// connection that received something since the last sweep. A connection that goes quiet gets its pings as
// before, and a dead one is noticed as soon: the timer runs from the last byte heard, not from a ping.
//
// This reaches into two ssh2 internals, the socket (`_sock`) and the timer's restart (`_resetKA`, what ssh2
// itself calls on an answer). Where they are missing, ssh2's own keepalives go on unchanged;
// test/integration/executors/ssh-keepalive.test.ts fails if they go away.

import type { Client } from 'ssh2';

interface Ssh2Internals {
  _sock?: { on(event: 'data', listener: () => void): unknown; off(event: 'data', listener: () => void): unknown };
  _resetKA?: () => void;
}

interface Watched {
  heard: boolean;
  intervalMs: number;
  reset: () => void;
}

const watched = new Set<Watched>();
let sweeper: { timer: NodeJS.Timeout; periodMs: number } | undefined;

function sweep(): void {
  for (const w of watched) {
    if (!w.heard) continue;
    w.heard = false;
    w.reset();
  }
}

/** One sweep for all connections, twice per the shortest keepalive interval among them, at most once a
 *  second (5 s by default: a connection with a line every few seconds never needs a ping). */
function schedule(): void {
  let shortest = Infinity;
  for (const w of watched) shortest = Math.min(shortest, w.intervalMs);
  const periodMs = Math.max(50, Math.min(1_000, Math.floor(shortest / 2)));
  if (sweeper?.periodMs === periodMs && watched.size > 0) return;
  if (sweeper) clearInterval(sweeper.timer);
  sweeper = watched.size > 0 ? { timer: setInterval(sweep, periodMs).unref(), periodMs } : undefined;
}

/** Postpones ssh2's keepalives on `client` (connected with `intervalMs`) while bytes arrive; call after
 *  'ready'. Returns whether it could (false: ssh2's internals are not there, and its keepalives run as
 *  they would). Stops by itself when the connection closes. */
export function keepaliveWhenQuiet(client: Client, intervalMs: number): boolean {
  const internals = client as unknown as Ssh2Internals;
  const sock = internals._sock;
  const resetKA = internals._resetKA;
  if (!sock || typeof sock.on !== 'function' || typeof resetKA !== 'function' || !(intervalMs > 0)) return false;
  const w: Watched = { heard: false, intervalMs, reset: () => resetKA.call(client) };
  const onData = () => {
    w.heard = true;
  };
  sock.on('data', onData);
  watched.add(w);
  schedule();
  client.once('close', () => {
    sock.off('data', onData);
    watched.delete(w);
    schedule();
  });
  return true;
}

/** Connections watched now (for tests). */
export function quietKeepaliveCount(): number {
  return watched.size;
}
