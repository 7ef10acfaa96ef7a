// The machines of one executor: acquire a ready machine for a job, release it after, and garbage-collect
// machines that carry our ownership tags but are not in use (left by a crash or a lost release).
// The provider's list is the source of truth; `inUse` is only a cache of what we handed out.

import type { Clock } from '../core/clock.js';
import { errorMessage, InsufficientCapacityError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CapacityProvider, ConnectionInfo, Machine, OwnershipTags } from '../core/machine.js';

export interface AcquiredMachine {
  machine: Machine;
  connection: ConnectionInfo;
}

export interface ExecutorFleetOptions {
  provider: CapacityProvider;
  tags: OwnershipTags;
  logger: Logger;
  clock: Clock;
  /** Attempts to get a ready machine before the job fails as a system failure. */
  acquireAttempts?: number;
  /** Pause before retrying a failed creation (grows per attempt, at most 5×). */
  retryDelayMs?: number;
}

export class MachineUnavailableError extends Error {}

export class ExecutorFleet {
  private readonly inUse = new Map<string, Machine>();
  private readonly attempts: number;

  constructor(private readonly opts: ExecutorFleetOptions) {
    this.attempts = opts.acquireAttempts ?? 3;
  }

  get machinesInUse(): number {
    return this.inUse.size;
  }

  /** A ready machine, or MachineUnavailableError after `acquireAttempts` with every reason joined. */
  async acquire(signal: AbortSignal, onProgress: (line: string) => void): Promise<AcquiredMachine> {
    const reasons: string[] = [];
    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      signal.throwIfAborted();
      const { machines, errors } = await this.opts.provider.create(1, this.opts.tags);
      const machine = machines[0];
      if (!machine) {
        const why = errors.map(errorMessage).join('; ') || 'the provider returned no machine';
        reasons.push(why);
        this.opts.logger.warn({ executor: this.opts.tags.executor, attempt, reason: why }, 'machine creation failed');
        onProgress(`WARNING: could not create a machine (attempt ${attempt}/${this.attempts}): ${why}`);
        if (!errors.some((e) => e instanceof InsufficientCapacityError)) await this.opts.clock.sleep((this.opts.retryDelayMs ?? 1000) * Math.min(attempt, 5), signal);
        continue;
      }
      this.inUse.set(machine.id, machine);
      try {
        const connection = await this.opts.provider.waitReady(machine, signal);
        this.opts.logger.info({ executor: this.opts.tags.executor, machine: machine.id }, 'machine ready');
        return { machine, connection };
      } catch (e) {
        const why = errorMessage(e);
        reasons.push(why);
        this.opts.logger.warn({ executor: this.opts.tags.executor, machine: machine.id, attempt, reason: why }, 'machine did not become ready');
        onProgress(`WARNING: machine ${machine.id} did not become ready (attempt ${attempt}/${this.attempts}): ${why}`);
        await this.release(machine);
        signal.throwIfAborted();
      }
    }
    throw new MachineUnavailableError(`no machine could be made ready after ${this.attempts} attempts: ${reasons.join('; ')}`);
  }

  /** Removes the machine (one job per machine). Never throws: failures are logged and left to GC. */
  async release(machine: Machine): Promise<void> {
    try {
      const { errors } = await this.opts.provider.terminate([machine.id]);
      for (const e of errors) this.opts.logger.error({ machine: machine.id, err: errorMessage(e) }, 'terminate failed; garbage collection will retry');
      if (errors.length === 0) this.inUse.delete(machine.id);
    } catch (e) {
      this.opts.logger.error({ machine: machine.id, err: errorMessage(e) }, 'terminate failed; garbage collection will retry');
    }
  }

  /** Terminates owned machines that are not in use and older than `minAgeMs` (younger ones may still be
   *  on their way back from `create`). Returns the ids it removed. */
  async collectGarbage(minAgeMs = 0): Promise<string[]> {
    const owned = await this.opts.provider.list(this.opts.tags);
    const now = this.opts.clock.now();
    const stray = owned.filter((m) => !this.inUse.has(m.id) && m.state !== 'terminated' && now - m.createdAt >= minAgeMs);
    if (stray.length) {
      const { errors } = await this.opts.provider.terminate(stray.map((m) => m.id));
      this.opts.logger.info({ executor: this.opts.tags.executor, removed: stray.map((m) => m.id), errors: errors.map(errorMessage) }, 'removed stray machines');
    }
    return stray.map((m) => m.id);
  }

  /** Terminates every machine this executor owns (shutdown). */
  async releaseAll(): Promise<void> {
    const owned = await this.opts.provider.list(this.opts.tags);
    const ids = owned.filter((m) => m.state !== 'terminated').map((m) => m.id);
    if (ids.length) {
      const { errors } = await this.opts.provider.terminate(ids);
      for (const e of errors) this.opts.logger.error({ err: errorMessage(e) }, 'terminate at shutdown failed');
    }
    this.inUse.clear();
  }
}
