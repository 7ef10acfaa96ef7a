// The fleet's lease as files in one directory on one host (`lease.file`), for hosts that are never replaced
// and for demos and tests. Node has no flock(2), so the lock is built from the two operations a local
// filesystem does atomically:
//
// - Every acquisition creates a NEW file `<fleet>.<version>.json` with link(2), which fails if the name
//   exists: of all contenders for version v+1 exactly one wins. The file is written whole under a temporary
//   name first, so nobody ever reads half a record. The file with the highest version is the lease; files
//   below it are removed by the holder that superseded them, and the highest one is never removed (a
//   release only marks it released), so versions only grow. After its link a claimer lists the directory
//   again and gives up if a higher version exists (a claimer that paused between reading and linking).
// - A renewal replaces the holder's own file with rename(2), after checking that no higher version exists.
//   A paused holder that wakes up can therefore only rewrite a file that is no longer the lease.
//
// A contender takes over when the highest record is released, expired by the clock (the same clock: one
// host), or its process is gone. "Gone" is only concluded when the record was written in the same boot and
// pid namespace (boot_id and /proc/self/ns/pid match) and the pid is dead or now belongs to a process that
// started at another time; otherwise only expiry counts. A takeover is decided on a read, so a renewal
// counts only if its write completed before the expiry it replaced: a contender that read the old record
// as expired read it after that expiry, and the holder has stopped by then (see runner/lease-keeper.ts).

import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { LeaseClaim, LeaseRecord, LeaseStore, LeaseWrite } from '../core/lease.js';

interface FileRecord extends LeaseRecord {
  released?: boolean;
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id and /proc/self/ns/pid of the writer; absent where /proc is not. */
  bootId?: string;
  pidNs?: string;
  /** starttime (clock ticks since boot) of the writer, field 22 of /proc/<pid>/stat. */
  pidStart?: string;
}

/** What tells a live process from a dead one; tests replace it. */
export interface ProcessProbe {
  /** This process, as it writes itself into a record. */
  self(): { pid: number; host: string; bootId?: string; pidNs?: string; pidStart?: string };
  /** True only when the record's process is certainly gone (same boot and pid namespace, pid dead or reused). */
  gone(r: { pid: number; bootId?: string; pidNs?: string; pidStart?: string }): boolean;
}

export interface FileLeaseStoreOptions {
  dir: string;
  /** The fleet name: files are `<name>.<version>.json`. */
  name: string;
  /** Wall clock (the contenders share it: one host). */
  now: () => number;
  probe?: ProcessProbe;
}

export class FileLeaseStore implements LeaseStore {
  readonly where: string;
  private readonly probe: ProcessProbe;
  private readonly pattern: RegExp;
  /** expiresAt of this holder's record as last written: a renewal must land before it. */
  private written: { version: number; expiresAt: number } | undefined;

  constructor(private readonly o: FileLeaseStoreOptions) {
    this.where = `file:${join(o.dir, `${o.name}.*.json`)}`;
    this.probe = o.probe ?? procProbe;
    this.pattern = new RegExp(`^${o.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.json$`);
  }

  async acquire(w: LeaseWrite): Promise<LeaseClaim> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    const top = await this.highest();
    if (top) {
      const rec = await this.read(top);
      if (rec && !this.free(rec, w)) return { kind: 'busy', current: rec };
    }
    const version = top + 1;
    const rec: FileRecord = { holder: w.holder, owner: w.owner, expiresAt: w.expiresAt, version, ...this.probe.self() };
    if (!(await this.create(version, rec))) return this.busyAt(await this.highest());
    const now = await this.highest();
    if (now !== version) return this.busyAt(now); // someone linked a higher version while we were paused
    this.written = { version, expiresAt: w.expiresAt };
    await this.removeBelow(version);
    return { kind: 'held', version, expiresAt: w.expiresAt };
  }

  async renew(w: LeaseWrite & { version: number }): Promise<LeaseClaim> {
    const top = await this.highest();
    if (top !== w.version) return this.busyAt(top);
    const mine = await this.read(w.version);
    if (!mine || mine.holder !== w.holder || mine.released) return { kind: 'busy', ...(mine && { current: mine }) };
    const previous = this.written?.version === w.version ? this.written.expiresAt : mine.expiresAt;
    await this.replace(w.version, { ...mine, owner: w.owner, expiresAt: w.expiresAt });
    if (this.o.now() >= previous) {
      // Landed after the old expiry: a contender may have read the old record as expired and taken over.
      throw new Error('the renewal was written after the lease had expired; not counted');
    }
    this.written = { version: w.version, expiresAt: w.expiresAt };
    return { kind: 'held', version: w.version, expiresAt: w.expiresAt };
  }

  async release(w: { holder: string; version: number }): Promise<void> {
    if ((await this.highest()) !== w.version) return;
    const mine = await this.read(w.version);
    if (!mine || mine.holder !== w.holder) return;
    await this.replace(w.version, { ...mine, expiresAt: 0, released: true });
  }

  private free(rec: FileRecord, w: LeaseWrite): boolean {
    return rec.released === true || rec.expiresAt < w.now || rec.holder === w.holder || this.probe.gone(rec);
  }

  private file(version: number): string {
    return join(this.o.dir, `${this.o.name}.${version}.json`);
  }

  private tmp(): string {
    return join(this.o.dir, `.${this.o.name}.${randomBytes(6).toString('hex')}.tmp`);
  }

  /** The highest version present, 0 for none. */
  private async highest(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.o.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    let top = 0;
    for (const n of names) {
      const m = this.pattern.exec(n);
      if (m) top = Math.max(top, Number(m[1]));
    }
    return top;
  }

  private async busyAt(version: number): Promise<LeaseClaim> {
    const rec = version ? await this.read(version) : undefined;
    return { kind: 'busy', ...(rec && { current: rec }) };
  }

  /** A record, or undefined when it is gone or unreadable (a file we did not write; it counts as expired). */
  private async read(version: number): Promise<FileRecord | undefined> {
    try {
      const r = JSON.parse(await readFile(this.file(version), 'utf8')) as Partial<FileRecord>;
      if (typeof r.holder !== 'string' || typeof r.expiresAt !== 'number' || typeof r.pid !== 'number') return undefined;
      return { ...(r as FileRecord), version, owner: typeof r.owner === 'string' ? r.owner : r.holder };
    } catch {
      return undefined;
    }
  }

  /** link(2): false when the version exists already. */
  private async create(version: number, rec: FileRecord): Promise<boolean> {
    const tmp = this.tmp();
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o600 });
    try {
      await link(tmp, this.file(version));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async replace(version: number, rec: FileRecord): Promise<void> {
    const tmp = this.tmp();
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o600 });
    try {
      await rename(tmp, this.file(version));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  private async removeBelow(version: number): Promise<void> {
    for (const n of await readdir(this.o.dir)) {
      const m = this.pattern.exec(n);
      if (m && Number(m[1]) < version) await rm(join(this.o.dir, n), { force: true });
    }
  }
}

function readTrim(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** starttime of a process (field 22 of /proc/<pid>/stat; the fields after the command name in parentheses). */
function startTime(pid: number): string | undefined {
  const stat = readTrim(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** Linux /proc: a record's process is gone only when it was written in this boot and pid namespace. */
export const procProbe: ProcessProbe = {
  self() {
    const bootId = readTrim('/proc/sys/kernel/random/boot_id');
    const pidNs = pidNamespace();
    const pidStart = startTime(process.pid);
    return { pid: process.pid, host: hostname(), ...(bootId && { bootId }), ...(pidNs && { pidNs }), ...(pidStart && { pidStart }) };
  },
  gone(r) {
    const bootId = readTrim('/proc/sys/kernel/random/boot_id');
    const pidNs = pidNamespace();
    if (!bootId || !pidNs || r.bootId !== bootId || r.pidNs !== pidNs) return false;
    try {
      process.kill(r.pid, 0);
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
    // Alive (or another user's): the same process only if it started when the record's did.
    const now = startTime(r.pid);
    return r.pidStart !== undefined && now !== undefined && now !== r.pidStart;
  },
};
