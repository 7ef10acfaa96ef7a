// Counting slots. The runner reserves one (globally and on the executor) BEFORE it asks GitLab for a
// job, so a job is never accepted without room to run it.

export class SlotPool {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(private cap: number) {}

  get capacity(): number {
    return this.cap;
  }

  /** A new capacity (config reload). Slots in use stay taken; below them, none is free until enough return. */
  resize(capacity: number): void {
    this.cap = capacity;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  get inUse(): number {
    return this.used;
  }

  get free(): number {
    return Math.max(0, this.cap - this.used);
  }

  tryTake(): boolean {
    if (this.used >= this.cap) return false;
    this.used++;
    return true;
  }

  /** Takes a slot even past the capacity: a job already running (continued from a previous coordinator)
   *  holds one whatever the cap; no new job is asked for until enough return. */
  take(): void {
    this.used++;
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
