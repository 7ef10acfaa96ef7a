// An executor whose jobs run until the test lets them finish (or their run is aborted): for tests of the
// job loop's slots, routing and runners, where what matters is which executor holds which job when.
import type { Executor, JobRunContext } from '../../src/core/executor.js';
import type { JobOutcome } from '../../src/core/outcome.js';

export class HeldExecutor implements Executor {
  readonly style = 'shell' as const;
  /** Ids of the jobs running now, in the order they started. */
  running: number[] = [];
  private releases = new Map<number, () => void>();

  async run(_m: unknown, ctx: JobRunContext): Promise<JobOutcome> {
    this.running.push(ctx.job.id);
    await new Promise<void>((resolve) => {
      this.releases.set(ctx.job.id, resolve);
      ctx.abort.addEventListener('abort', () => resolve(), { once: true });
    });
    this.running = this.running.filter((j) => j !== ctx.job.id);
    return { state: 'success' };
  }

  /** Lets job `id` end with success. */
  finish(id: number): void {
    this.releases.get(id)?.();
  }
}
