// GitLab stores traces as UTF-8: invalid sequences are replaced before buffering (docs/gitlab-protocol.md §4), and a
// multi-byte character split across two writes must not be mistaken for an invalid one.

import { isUtf8 } from 'node:buffer';

export class Utf8Repair {
  private carry: Buffer = Buffer.alloc(0);
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(private readonly out: (bytes: Buffer) => void) {}

  write(chunk: Buffer): void {
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const cut = completeLength(buf);
    this.carry = cut < buf.length ? Buffer.from(buf.subarray(cut)) : Buffer.alloc(0);
    if (cut === 0) return;
    const body = buf.subarray(0, cut);
    this.out(isUtf8(body) ? body : Buffer.from(this.decoder.decode(body)));
  }

  /** Bytes of an incomplete character held until the next write. */
  get heldBytes(): number {
    return this.carry.length;
  }

  flush(): void {
    if (!this.carry.length) return;
    const rest = this.carry;
    this.carry = Buffer.alloc(0);
    this.out(Buffer.from(this.decoder.decode(rest)));
  }
}

/** Length of `buf` without a trailing, still incomplete multi-byte sequence (at most 3 bytes). */
export function completeLength(buf: Uint8Array): number {
  const n = buf.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = buf[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}
