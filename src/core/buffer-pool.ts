// Node hands out small Buffers (under half of Buffer.poolSize: 4 KiB by default) as slices of a shared
// 8 KiB slab, and a slab stays in memory while any slice of it lives. ssh2 keeps a few such slices for a
// connection's whole life: the server's ident line, the key exchange's offer, the AES-GCM tag, the
// parsed key's public half. Each pins whatever slab was current when it was made. Measured with 1,000
// jobs in flight (one connection each, held for hours): ~1,200 slabs, 10 KiB a job, held by slices of a
// few dozen bytes (bench/cost.mjs, "outside it" in the memory figure).
//
// So the coordinator turns pooling off: each small Buffer gets a backing store of its own size. The
// price is on Buffer.from(string) of a short string, ~1 µs instead of ~0.1 µs; counted in a running
// coordinator with 100 jobs, that is a few calls a second.

/** Small Buffers made from now on get backing stores of their own (Buffer.poolSize is Node's own knob). */
export function unpoolSmallBuffers(): void {
  Buffer.poolSize = 0;
}
