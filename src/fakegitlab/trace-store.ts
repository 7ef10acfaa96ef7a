// A job's stored trace, appended PATCH by PATCH. It keeps the pieces as they came (copying the whole trace
// into one buffer as it grew cost more than everything else the fake does per PATCH on a 100 MB trace),
// and its length and CRC-32 as it grows, so neither a PATCH nor the final PUT needs it in one piece. One
// contiguous Buffer is made only when something asks for all of it (a test, an artifact check).
import { crc32 } from 'node:zlib';

export class TraceStore {
  private parts: Buffer[] = [];
  private whole: Buffer | undefined = Buffer.alloc(0);
  private crc = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  /** `crc32:` + 8 lowercase hex digits over every stored byte (GitLab's format). */
  get checksum(): string {
    return `crc32:${(this.crc >>> 0).toString(16).padStart(8, '0')}`;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.size += chunk.length;
    this.crc = crc32(chunk, this.crc);
    this.whole = undefined;
  }

  /** The last `n` bytes (fewer if the trace is shorter). */
  tail(n: number): Buffer {
    const out: Buffer[] = [];
    let need = Math.min(n, this.size);
    for (let i = this.parts.length - 1; i >= 0 && need > 0; i--) {
      const p = this.parts[i]!;
      out.unshift(p.length <= need ? p : p.subarray(p.length - need));
      need -= Math.min(need, p.length);
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** Everything stored, in one Buffer (made once, then kept until the next append). */
  get bytes(): Buffer {
    if (!this.whole) {
      this.whole = Buffer.concat(this.parts, this.size);
      this.parts = [this.whole];
    }
    return this.whole;
  }

  /** Starts over with `bytes` (a 412 empties it). */
  reset(bytes: Buffer = Buffer.alloc(0)): void {
    this.parts = bytes.length ? [bytes] : [];
    this.whole = bytes;
    this.size = bytes.length;
    this.crc = crc32(bytes);
  }
}
