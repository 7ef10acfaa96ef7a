// The stored trace of one job: appended to a spool file, read back for PATCHes (and re-read from 0 after
// a 412), so a job printing gigabytes costs no memory. CRC-32 and size are kept incrementally.

import { closeSync, fstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { TraceLog } from '../../core/trace.js';
import { completeLength } from './utf8.js';

export class FileTraceLog implements TraceLog {
  private checksumKnown = true;
  private fd: number;
  private bytes = 0;
  private crc = 0;
  private truncated = false;
  /** Listeners of onGrowth, called by store(). */
  private readonly growth = new Set<(size: number) => void>();

  /** Trace bytes before this spool's first byte: a successor's spool starts where a checkpoint says
   *  GitLab's copy is (they are not readable here). */
  private readonly base: number;

  /** @param limitBytes GitLab's output_limit: past it the data is cut and the notice appended.
   *  @param base a trace continued from a checkpoint: its size and CRC-32 before this spool. */
  constructor(
    private readonly path: string,
    private readonly limitBytes: number,
    mode: 'create' | 'reopen' = 'create',
    base?: { bytes: number; crc: number },
  ) {
    this.fd = openSync(path, mode === 'create' ? 'w+' : 'r+', 0o600);
    this.base = base?.bytes ?? 0;
    this.bytes = this.base;
    this.crc = base?.crc ?? 0;
    this.truncated = this.bytes >= limitBytes && this.base > 0;
    if (mode === 'reopen') this.scanExisting();
  }

  /** CRC-32 of every stored byte so far, as a number (for checkpoints). */
  get crcValue(): number {
    return this.crc >>> 0;
  }

  /** The first trace byte this spool holds (0 unless continued from a checkpoint). */
  get baseOffset(): number {
    return this.base;
  }

  /** The spool of a job from an earlier run: size and checksum rebuilt from its bytes. */
  static reopen(path: string, limitBytes: number): FileTraceLog {
    return new FileTraceLog(path, limitBytes, 'reopen');
  }

  private scanExisting(): void {
    const size = fstatSync(this.fd).size;
    const buf = Buffer.alloc(Math.min(size, 1 << 20));
    for (let off = 0; off < size; ) {
      const n = readSync(this.fd, buf, 0, Math.min(buf.length, size - off), off);
      if (n === 0) break;
      this.crc = crc32(buf.subarray(0, n), this.crc);
      off += n;
    }
    this.bytes = size;
    this.truncated = size >= this.limitBytes;
  }

  /** Stops writing without deleting the spool (the journal still points at it). */
  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  get size(): number {
    return this.bytes;
  }

  get isTruncated(): boolean {
    return this.truncated;
  }

  checksum(): string | undefined {
    if (!this.checksumKnown) return undefined;
    return `crc32:${(this.crc >>> 0).toString(16).padStart(8, '0')}`;
  }

  /** The stored bytes are known not to match GitLab's copy (CheckpointedTrace.inexact). */
  forgetChecksum(): void {
    this.checksumKnown = false;
  }

  append(data: Uint8Array): void {
    if (this.truncated || data.length === 0 || this.fd < 0) return;
    const room = this.limitBytes - this.bytes;
    if (data.length <= room) return this.store(data);
    // Cut at a UTF-8 boundary, then GitLab's notice (bold yellow), then drop everything after.
    this.store(data.subarray(0, completeLength(data.subarray(0, room))));
    this.store(Buffer.from(`\n\x1b[33;1mJob's log exceeded limit of ${this.limitBytes} bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n`));
    this.truncated = true;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.readSync(offset, length);
  }

  readSync(offset: number, length: number): Uint8Array {
    // Bytes before the base are GitLab's already (a continued trace): nothing to read there.
    if (offset < this.base) return Buffer.alloc(0);
    const n = Math.max(0, Math.min(length, this.bytes - offset));
    const buf = Buffer.allocUnsafe(n); // every byte handed out is read from the file first
    let got = 0;
    while (got < n) {
      const r = readSync(this.fd, buf, got, n - got, offset - this.base + got);
      if (r === 0) break;
      got += r;
    }
    return buf.subarray(0, got);
  }

  /** See TraceLog.onGrowth. */
  onGrowth(listener: (size: number) => void): () => void {
    this.growth.add(listener);
    return () => this.growth.delete(listener);
  }

  /** Closes and deletes the spool file. */
  dispose(): void {
    this.close();
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private store(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) off += writeSync(this.fd, data, off, data.length - off, this.bytes - this.base + off);
    this.bytes += data.length;
    this.crc = crc32(data, this.crc);
    for (const listener of this.growth) listener(this.bytes);
  }
}
