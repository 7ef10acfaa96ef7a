// Counting slots. The runner reserves one (globally and on the executor) BEFORE it asks GitLab for a
// job, so a job is never accepted without room to run it.

export class SlotPool {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  get free(): number {
    return this.capacity - this.used;
  }

  tryTake(): boolean {
    if (this.used >= this.capacity) return false;
    this.used++;
    return true;
  }

  give(): void {
    if (this.used === 0) throw new Error('SlotPool: released more slots than taken');
    this.used--;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves the next time a slot is given back (or at once if one is free). */
  whenFree(signal?: AbortSignal): Promise<void> {
    if (this.free > 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}
