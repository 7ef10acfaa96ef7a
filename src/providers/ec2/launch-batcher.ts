// Batches launches that queue up behind RunInstances' request rate (bucket 5, refilled at 2 per second per
// account and region; request-pacer.ts). One launch per call while the bucket has room for each; when more
// launches wait than there are tokens, the queue is split over the tokens left, so a burst of 300 machines
// costs a handful of calls instead of 150 seconds of pacing.
//
// The instances of one call share its user data, so they share one SSH host key pair (and one client key
// nonce; their key tags are the same). Why that is acceptable: the host key lets the coordinator know it
// reached a machine of its own fleet, launched by that call. Root on one machine of a batch (a job's
// privileged container) could read that key and impersonate another machine of the same batch, but only by
// also taking over that machine's address inside the VPC; every machine's user data is readable from the
// machine itself anyway (IMDS), so per-instance keys in one user data would expose the same. Where that is
// not acceptable, `ec2.launchBatch: 1` keeps one call, and one host key, per machine.

import type { RequestPacer } from './request-pacer.js';

export interface BatchKey {
  /** Launches only batch with launches of the same key (owner tags, market choice). */
  readonly id: string;
}

export type LaunchResult<T> = { ok: true; value: T } | { ok: false; error: Error };

export interface LaunchBatcherOptions<K extends BatchKey, T, P> {
  pacer: RequestPacer;
  /** Most launches per call. */
  maxBatch: number;
  /** What a call needs that does not depend on its size (image, keys, user data), made before its token is
   *  taken, so the call follows its token at once: EC2's bucket sees calls when they arrive. */
  prepare: (key: K) => Promise<P>;
  /** Carries out one batch: `count` launches, the call's first pacer token already taken. One result per
   *  launch, in any order. */
  launch: (prepared: P, key: K, count: number) => Promise<Array<LaunchResult<T>>>;
}

interface Waiting<K, T> {
  key: K;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

export class LaunchBatcher<K extends BatchKey, T, P = unknown> {
  private readonly queue: Array<Waiting<K, T>> = [];
  private draining = false;

  constructor(private readonly o: LaunchBatcherOptions<K, T, P>) {}

  /** Resolves with the launched machine, or rejects with why it was not launched. */
  launch(key: K): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ key, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Launches waiting in the queue (not yet in a call). */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * How many of `queued` launches the next call takes when `tokensLeft` more calls could go at once after
   * it: spread over the calls that can go now, at most `maxBatch`. Pure.
   */
  static batchSize(queued: number, tokensLeft: number, maxBatch: number): number {
    return Math.max(1, Math.min(maxBatch, queued, Math.ceil(queued / (tokensLeft + 1))));
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // Launches asked for in the same turn of the event loop (one create(n), or many jobs at once) are
      // seen together.
      await new Promise<void>((r) => setImmediate(r));
      while (this.queue.length > 0) {
        const key = this.queue[0]!.key;
        let prepared: P;
        try {
          prepared = await this.o.prepare(key);
        } catch (e) {
          // Nothing of this key can be launched now (no image, say): every launch waiting for it fails.
          const error = e instanceof Error ? e : new Error(String(e));
          for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.key.id === key.id) this.queue.splice(i, 1)[0]!.reject(error);
          continue;
        }
        await this.o.pacer.take();
        const same = this.queue.filter((w) => w.key.id === key.id).length;
        const size = LaunchBatcher.batchSize(same, this.o.pacer.available(), this.o.maxBatch);
        const batch: Array<Waiting<K, T>> = [];
        for (let i = 0; i < this.queue.length && batch.length < size; ) {
          if (this.queue[i]!.key.id === key.id) batch.push(...this.queue.splice(i, 1));
          else i++;
        }
        void this.run(prepared, key, batch);
      }
    } finally {
      this.draining = false;
    }
  }

  private async run(prepared: P, key: K, batch: Array<Waiting<K, T>>): Promise<void> {
    let results: Array<LaunchResult<T>>;
    try {
      results = await this.o.launch(prepared, key, batch.length);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (!r) w.reject(new Error('EC2 launch batch returned fewer results than launches'));
      else if (r.ok) w.resolve(r.value);
      else w.reject(r.error);
    });
  }
}
