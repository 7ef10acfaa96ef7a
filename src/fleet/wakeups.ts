// The fleet's small scheduling mechanics, apart from its decisions: callers waiting for a change, a run
// whose concurrent calls fold into one more, and a kick that settles a burst of changes into one run.

import type { Clock } from '../core/clock.js';

/** Callers waiting for any change (a machine became idle, or one went away). */
export class ChangeWaiters {
  private waiters = new Set<() => void>();

  get size(): number {
    return this.waiters.size;
  }

  wake(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w();
  }

  /** Resolves at the next wake(); rejects with the signal's reason when it aborts first. */
  next(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.waiters.delete(done);
        reject(signal.reason);
      };
      const done = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(done);
    });
  }
}

/** Runs `work`; a call while it runs asks for one more run after it instead of running beside it. */
export class CoalescedRun {
  private running = false;
  private again = false;

  constructor(
    private readonly work: () => Promise<void>,
    private readonly mayRepeat: () => boolean,
  ) {}

  async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        await this.work();
      } while (this.again && this.mayRepeat());
    } finally {
      this.running = false;
    }
  }
}

/** Schedules `run` `settleMs` after the first kick of a burst (at once, in a microtask, for 0), so a burst of
 *  changes is one run; kicks stop once `stopped` aborts. */
export class SettledKick {
  private pending = false;

  constructor(
    private readonly o: { clock: Clock; settleMs: number; stopped: AbortSignal; run: () => void },
  ) {}

  kick(): void {
    if (this.o.stopped.aborted || this.pending) return;
    this.pending = true;
    const fire = () => {
      this.pending = false;
      this.o.run();
    };
    if (this.o.settleMs <= 0) queueMicrotask(fire);
    else this.o.clock.sleep(this.o.settleMs, this.o.stopped).then(fire, () => (this.pending = false));
  }
}
