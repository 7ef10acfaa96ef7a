// A clock the test steps. `advance` moves time forward sleeper by sleeper (each wakes at its own instant,
// and what it starts runs before the next one wakes), as a running process experiences time; `jump` moves
// it at once and then wakes everything that is due, as a process that was paused (SIGSTOP, a long GC)
// experiences it. Between steps the event loop is turned a few times, so promise chains through the AWS
// SDK's middleware (aws-sdk-client-mock) and real file-system calls settle. Nothing ever sleeps for real.

import type { Clock } from '../../src/core/clock.js';

/** Lets pending I/O callbacks and promise chains run: a few turns of the event loop. */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

export class StepClock implements Clock {
  private sleepers: Array<{ at: number; seq: number; resolve: () => void }> = [];
  private seq = 0;
  /** Awaited before every step: real I/O the code under test started (files) completes first. */
  quiesce: () => Promise<void> = async () => undefined;

  constructor(private t = Date.UTC(2025, 5, 1, 12, 0, 0)) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const entry = { at: this.t + Math.max(0, Number.isFinite(ms) ? ms : Number.MAX_SAFE_INTEGER), seq: this.seq++, resolve: () => undefined as void };
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== entry);
        reject(signal!.reason);
      };
      entry.resolve = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.sleepers.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sleepers waiting now. */
  get pending(): number {
    return this.sleepers.length;
  }

  /** Moves time forward by `ms`, waking each sleeper at its own instant, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      await this.quiesce();
      await settle();
      const due = this.sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      this.sleepers = this.sleepers.filter((s) => s !== due);
      due.resolve();
    }
    this.t = end;
    await settle();
  }

  /** Moves time forward by `ms` at once, then wakes every sleeper that is due (a paused process waking up). */
  async jump(ms: number): Promise<void> {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
    await settle();
    await this.advance(0);
  }
}
