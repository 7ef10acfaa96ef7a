// An in-memory TraceLog: what the executor wrote, read back for PATCHes, with GitLab's checksum.

import { crc32 } from 'node:zlib';
import type { TraceLog } from '../../../../src/core/trace.js';

export class MemoryTrace implements TraceLog {
  private data = Buffer.alloc(0);

  constructor(initial?: string | Buffer) {
    if (initial !== undefined) this.append(initial);
  }

  private waiters: Array<{ bytes: number; resolve: () => void }> = [];

  append(chunk: string | Buffer): void {
    this.data = Buffer.concat([this.data, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    const ready = this.waiters.filter((w) => w.bytes <= this.data.length);
    this.waiters = this.waiters.filter((w) => w.bytes > this.data.length);
    for (const w of ready) w.resolve();
  }

  whenSize(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.data.length >= bytes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { bytes, resolve };
      this.waiters.push(w);
      signal.addEventListener('abort', () => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(signal.reason);
      }, { once: true });
    });
  }

  get size(): number {
    return this.data.length;
  }

  get bytes(): Buffer {
    return this.data;
  }

  checksum(): string {
    return `crc32:${crc32(this.data).toString(16).padStart(8, '0')}`;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.data.subarray(offset, offset + length);
  }
}
