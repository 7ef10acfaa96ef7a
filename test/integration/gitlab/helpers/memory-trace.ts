// An in-memory TraceLog: what the executor wrote, read back for PATCHes, with GitLab's checksum.

import { crc32 } from 'node:zlib';
import type { TraceLog } from '../../../../src/core/trace.js';

export class MemoryTrace implements TraceLog {
  private data = Buffer.alloc(0);

  constructor(initial?: string | Buffer) {
    if (initial !== undefined) this.append(initial);
  }

  private readonly growth = new Set<(size: number) => void>();

  append(chunk: string | Buffer): void {
    this.data = Buffer.concat([this.data, typeof chunk === 'string' ? Buffer.from(chunk) : chunk]);
    for (const listener of this.growth) listener(this.data.length);
  }

  onGrowth(listener: (size: number) => void): () => void {
    this.growth.add(listener);
    return () => this.growth.delete(listener);
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
