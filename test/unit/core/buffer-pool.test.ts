import { afterEach, describe, expect, it } from 'vitest';

import { unpoolSmallBuffers } from '../../../src/core/buffer-pool.js';

describe('unpoolSmallBuffers', () => {
  const before = Buffer.poolSize;
  afterEach(() => {
    Buffer.poolSize = before;
  });

  it('gives a small Buffer a backing store of its own, so keeping it keeps no shared slab', () => {
    // Pooled (Node's default), a 40-byte Buffer is a view on an 8 KiB slab that other small Buffers share.
    Buffer.poolSize = 8 * 1024;
    expect(Buffer.from('SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n').buffer.byteLength).toBe(8 * 1024);
    unpoolSmallBuffers();
    const ident = Buffer.from('SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n');
    expect(ident.buffer.byteLength).toBe(ident.length);
    expect(Buffer.allocUnsafe(16).buffer.byteLength).toBe(16);
  });
});
