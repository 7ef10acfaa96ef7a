// Node hands out small Buffers (under half of Buffer.poolSize: 4 KiB by default) as slices of a shared
// 8 KiB slab, and a slab stays in memory while any slice of it lives. ssh2 keeps a few such slices for a
// connection's whole life: the server's ident line, the key exchange's offer, the AES-GCM tag, the
// parsed key's public half. Each pins whatever slab was current when it was made. Measured with 1,000
// jobs in flight (one connection each, held for hours): ~1,200 slabs, 10 KiB a job, held by slices of a
// few dozen bytes (bench/cost.mjs, "outside it" in the memory figure).
//
// So the coordinator turns pooling off: each small Buffer (Buffer.allocUnsafe, Buffer.from, concat) gets a
// backing store of its own size. The price: ~1.1 µs for a small one, its collection included, against
// ~0.08 µs from the pool. ssh2 makes one per packet it sends (a keepalive, a command), the trace pipeline
// a few; counted in a running coordinator with 100 jobs, ~40 a second. Large ones (a 32 KiB data packet)
// were never pooled. The setting is process-wide: the coordinator's process is its own.

/** Small Buffers made from now on get backing stores of their own (Buffer.poolSize is Node's own knob). */
export function unpoolSmallBuffers(): void {
  Buffer.poolSize = 0;
}
