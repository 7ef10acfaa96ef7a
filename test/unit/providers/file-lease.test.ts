// The file lease on a real directory, with stepped clocks and a scripted process probe (and the real /proc
// probe against real processes). No test sleeps.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { HeldLease, LeaseStore } from '../../../src/core/lease.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FileLeaseStore, procProbe, type ProcessProbe } from '../../../src/providers/file-lease.js';
import { LeaseKeeper } from '../../../src/runner/lease-keeper.js';
import { StepClock } from '../../helpers/step-clock.js';

const dirs: string[] = [];
const held: HeldLease[] = [];
afterEach(async () => {
  await Promise.all(held.splice(0).map((h) => h.release()));
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'fr-lease-'));
  dirs.push(d);
  return join(d, 'lease');
}

/** Pids listed in `dead` are gone; every record is written as `pid`. */
function probe(pid: number, dead: Set<number>): ProcessProbe {
  return { self: () => ({ pid, host: 'h', bootId: 'b', pidNs: 'pid:[1]', pidStart: '1' }), gone: (r) => dead.has(r.pid) };
}

const w = (holder: string, now: number, d = 30_000) => ({ holder, owner: `proc-${holder}`, now, expiresAt: now + d });

describe('FileLeaseStore', () => {
  it('claims version 1 in an empty directory, refuses while held, takes over once expired, and keeps only the newest file', async () => {
    const dir = tempDir();
    const dead = new Set<number>();
    let now = 1_000;
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => now, probe: probe(11, dead) });
    const b = new FileLeaseStore({ dir, name: 'ci', now: () => now, probe: probe(22, dead) });
    expect(await a.acquire(w('a', now))).toEqual({ kind: 'held', version: 1, expiresAt: 31_000 });
    expect(await b.acquire(w('b', 31_000))).toMatchObject({ kind: 'busy', current: { holder: 'a', owner: 'proc-a', expiresAt: 31_000, version: 1 } });
    now = 31_001;
    expect(await b.acquire(w('b', now))).toEqual({ kind: 'held', version: 2, expiresAt: 61_001 });
    expect(readdirSync(dir)).toEqual(['ci.2.json']);
    expect(JSON.parse(readFileSync(join(dir, 'ci.2.json'), 'utf8'))).toMatchObject({ holder: 'b', pid: 22, version: 2 });
  });

  it('takes over at once from a holder whose process is gone', async () => {
    const dir = tempDir();
    const dead = new Set<number>();
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(11, dead) });
    const b = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(22, dead) });
    await a.acquire(w('a', 0));
    expect(await b.acquire(w('b', 0))).toMatchObject({ kind: 'busy' });
    dead.add(11);
    expect(await b.acquire(w('b', 0))).toMatchObject({ kind: 'held', version: 2 });
  });

  it('renewal is fenced: after a takeover the old holder is refused and cannot touch the new record', async () => {
    const dir = tempDir();
    let now = 0;
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => now, probe: probe(11, new Set()) });
    const b = new FileLeaseStore({ dir, name: 'ci', now: () => now, probe: probe(22, new Set()) });
    await a.acquire(w('a', 0));
    expect(await a.renew({ ...w('a', 10_000), version: 1 })).toMatchObject({ kind: 'held', expiresAt: 40_000 });
    now = 40_001;
    await b.acquire(w('b', now));
    const newest = readFileSync(join(dir, 'ci.2.json'), 'utf8');
    expect(await a.renew({ ...w('a', now), version: 1 })).toMatchObject({ kind: 'busy', current: { holder: 'b', version: 2 } });
    await a.release({ holder: 'a', version: 1 });
    expect(readFileSync(join(dir, 'ci.2.json'), 'utf8')).toBe(newest);
  });

  it('a renewal written after the expiry it replaced does not count (a contender may have read the old record)', async () => {
    const dir = tempDir();
    let now = 0;
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => now, probe: probe(11, new Set()) });
    await a.acquire(w('a', 0));
    // The renewal was computed at 4 s, but the process paused and the write completed at 30 s.
    const renewal = a.renew({ ...w('a', 4_000), version: 1 });
    now = 30_000;
    await expect(renewal).rejects.toThrow(/written after the lease had expired/);
  });

  it('release keeps the newest file, marked released, so versions only grow', async () => {
    const dir = tempDir();
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(11, new Set()) });
    const b = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(22, new Set()) });
    await a.acquire(w('a', 0));
    await a.release({ holder: 'a', version: 1 });
    expect(JSON.parse(readFileSync(join(dir, 'ci.1.json'), 'utf8'))).toMatchObject({ released: true, expiresAt: 0 });
    expect(await b.acquire(w('b', 0))).toMatchObject({ kind: 'held', version: 2 });
  });

  it('of many contenders at once exactly one wins', async () => {
    const dir = tempDir();
    const stores = Array.from({ length: 8 }, (_, i) => new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(100 + i, new Set()) }));
    const claims = await Promise.all(stores.map((s, i) => s.acquire(w(`h${i}`, 0)).catch((e: unknown) => ({ kind: 'error', e }))));
    expect(claims.filter((c) => c.kind === 'held')).toHaveLength(1);
  });

  it('a claimer that paused between reading and linking gives up when a newer version exists', async () => {
    const dir = tempDir();
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(11, new Set()) });
    await a.acquire(w('a', 0));
    await a.release({ holder: 'a', version: 1 });
    // Someone linked version 3 (after a version 2 that was removed): version 2 is free to link again.
    writeFileSync(join(dir, 'ci.3.json'), JSON.stringify({ holder: 'c', owner: 'proc-c', expiresAt: 60_000, version: 3, pid: 33, host: 'h' }));
    const late = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(22, new Set()) });
    // Reading happens inside acquire: it sees 3 as the newest, held, and waits.
    expect(await late.acquire(w('late', 0))).toMatchObject({ kind: 'busy', current: { holder: 'c', version: 3 } });
  });

  it('fleets in one directory do not meet', async () => {
    const dir = tempDir();
    const a = new FileLeaseStore({ dir, name: 'ci', now: () => 0, probe: probe(11, new Set()) });
    const b = new FileLeaseStore({ dir, name: 'ci-2', now: () => 0, probe: probe(22, new Set()) });
    expect(await a.acquire(w('a', 0))).toMatchObject({ kind: 'held', version: 1 });
    expect(await b.acquire(w('b', 0))).toMatchObject({ kind: 'held', version: 1 });
  });
});

describe('procProbe (Linux /proc)', () => {
  it('says gone only for a dead process of this boot and pid namespace', async () => {
    const me = procProbe.self();
    expect(me.pid).toBe(process.pid);
    if (!me.bootId || !me.pidNs || !me.pidStart) return; // no /proc here: only expiry counts
    expect(procProbe.gone(me)).toBe(false);
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => child.on('exit', r));
    expect(procProbe.gone({ ...me, pid: child.pid! })).toBe(true);
    expect(procProbe.gone({ ...me, pid: child.pid!, bootId: 'another-boot' })).toBe(false);
    expect(procProbe.gone({ ...me, pid: child.pid!, pidNs: 'pid:[1]' })).toBe(false);
    // A live pid that started at another time is a reused pid: gone.
    expect(procProbe.gone({ ...me, pidStart: '1' })).toBe(true);
  });
});

/** Counts the store's calls in flight, so the stepped clock waits for real file I/O before moving on. */
function tracked(store: LeaseStore): LeaseStore & { idle(): Promise<void> } {
  let inflight = 0;
  let waiters: Array<() => void> = [];
  const wrap = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    inflight++;
    try {
      return await f(...a);
    } finally {
      if (--inflight === 0) waiters.splice(0).forEach((w) => w());
    }
  };
  return {
    where: store.where,
    acquire: wrap(store.acquire.bind(store)),
    renew: wrap(store.renew.bind(store)),
    release: wrap(store.release.bind(store)),
    idle: () => (inflight === 0 ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
  };
}

describe('LeaseKeeper over files', () => {
  it('a waiting coordinator takes over at once when the holder process is gone', async () => {
    const dir = tempDir();
    // One clock per process: A's stops when A is killed (its timers never fire again).
    const clockA = new StepClock();
    const clockB = new StepClock(clockA.now());
    const dead = new Set<number>();
    const stores: Array<ReturnType<typeof tracked>> = [];
    const keeper = (pid: number, id: string, clock: StepClock) => {
      const store = tracked(new FileLeaseStore({ dir, name: 'ci', now: () => clock.now(), probe: probe(pid, dead) }));
      stores.push(store);
      clock.quiesce = async () => void (await Promise.all(stores.map((s) => s.idle())));
      return new LeaseKeeper({ store, holder: { id, owner: `proc-${id}` }, durationMs: 6_000, renewIntervalMs: 2_000, maxClockSkewMs: 0, clock, logger: silentLogger });
    };
    const a = (await keeper(11, 'a', clockA).acquire(new AbortController().signal))!;
    let b: HeldLease | undefined;
    void keeper(22, 'b', clockB).acquire(new AbortController().signal).then((h) => {
      b = h;
      if (h) held.push(h);
    });
    for (let t = 0; t < 20_000; t += 500) {
      await clockA.advance(500);
      await clockB.advance(500);
    }
    expect(b).toBeUndefined();
    expect(a.held()).toBe(true);
    // SIGKILL: A's clock stops and its process is gone. B takes over on its next look, long before A's
    // record (renewed at 20 s, so until 26 s) expires.
    dead.add(11);
    await clockB.advance(2_000);
    expect(b?.version).toBe(2);
    expect(readdirSync(dir)).toEqual(['ci.2.json']);
  });
});
