// Waits for instances to reach a state, with one DescribeInstances call per poll for all machines that are
// waiting (batched by instance-id filter), so ten machines booting at once cost what one does. Polls back
// off from 2 s to 10 s (pending → running takes 5–20 s) and start over at 2 s when a new machine starts
// waiting. Deadlines are checked against the injected clock at every turn; there is no timer of its own.

import { DescribeInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';

import type { Clock } from '../../core/clock.js';
import { PermanentError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { classifyEc2Error } from './classify-error.js';

export interface InstanceWatcherOptions {
  ec2: EC2Client;
  clock: Clock;
  logger: Logger;
  /** First pause between polls. Default 2 s. */
  minIntervalMs?: number;
  /** Longest pause between polls. Default 10 s. */
  maxIntervalMs?: number;
}

/** The deadline passed; `last` is what EC2 said about the instance at the last poll (if anything). */
export class WaitTimeoutError extends Error {
  constructor(
    readonly instanceId: string,
    readonly last: Instance | undefined,
  ) {
    super(`instance ${instanceId} ${last?.State?.Name ? `was still ${last.State.Name}` : 'was not visible in DescribeInstances'} at the deadline`);
  }
}

/** The provider shut down while someone waited. */
export class WatcherStoppedError extends Error {}

interface Waiter {
  id: string;
  until: (i: Instance) => boolean;
  deadline: number;
  last?: Instance;
  resolve: (i: Instance) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

// EC2 accepts up to 200 values in one filter.
const IDS_PER_CALL = 200;

export class InstanceWatcher {
  private readonly waiters = new Set<Waiter>();
  private running = false;
  private wake: AbortController | undefined;
  private interval: number;
  private nextPoll = 0;
  private readonly min: number;
  private readonly max: number;

  constructor(private readonly o: InstanceWatcherOptions) {
    this.min = o.minIntervalMs ?? 2_000;
    this.max = o.maxIntervalMs ?? 10_000;
    this.interval = this.min;
  }

  /** Resolves with the instance once `until` holds for it (checked only once EC2 shows it); rejects with WaitTimeoutError after `deadline`. */
  waitFor(id: string, until: (i: Instance) => boolean, deadline: number, signal?: AbortSignal): Promise<Instance> {
    return new Promise<Instance>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.waiters.delete(w);
        reject(signal!.reason);
      };
      const w: Waiter = { id, until, deadline, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(w);
      // A newcomer is looked at right away; everyone shares that poll.
      this.nextPoll = this.o.clock.now();
      this.interval = this.min;
      this.wake?.abort();
      if (!this.running) void this.loop();
    });
  }

  /** Rejects every waiter and stops polling. */
  stop(): void {
    for (const w of this.waiters) this.settle(w, () => w.reject(new WatcherStoppedError('the ec2 provider was shut down')));
    this.wake?.abort();
  }

  private settle(w: Waiter, how: () => void): void {
    if (!this.waiters.delete(w)) return;
    w.cleanup();
    how();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.waiters.size > 0) {
        const now = this.o.clock.now();
        for (const w of [...this.waiters]) if (now >= w.deadline) this.settle(w, () => w.reject(new WaitTimeoutError(w.id, w.last)));
        if (this.waiters.size === 0) break;
        if (now < this.nextPoll) {
          const wakeAt = Math.min(this.nextPoll, ...[...this.waiters].map((w) => w.deadline));
          this.wake = new AbortController();
          await this.o.clock.sleep(wakeAt - now, this.wake.signal).catch(() => undefined); // woken early: look again
          this.wake = undefined;
          continue;
        }
        await this.poll();
        this.nextPoll = this.o.clock.now() + this.interval;
        this.interval = Math.min(this.max, Math.round(this.interval * 1.5));
      }
    } finally {
      this.running = false;
    }
  }

  private async poll(): Promise<void> {
    const ids = [...new Set([...this.waiters].map((w) => w.id))];
    const seen = new Map<string, Instance>();
    try {
      for (let i = 0; i < ids.length; i += IDS_PER_CALL) {
        for (const inst of await describeByIds(this.o.ec2, ids.slice(i, i + IDS_PER_CALL))) {
          if (inst.InstanceId) seen.set(inst.InstanceId, inst);
        }
      }
    } catch (e) {
      const c = classifyEc2Error(e);
      if (c.kind === 'throttled' || c.kind === 'transient') {
        this.o.logger.warn({ code: c.code, waiting: ids.length }, 'DescribeInstances failed while waiting for instances: backing off');
        this.interval = this.max;
        return;
      }
      const err = new PermanentError(`EC2 DescribeInstances failed: ${c.code}: ${c.message}`, { cause: e });
      for (const w of [...this.waiters]) this.settle(w, () => w.reject(err));
      return;
    }
    for (const w of [...this.waiters]) {
      const inst = seen.get(w.id);
      if (!inst) continue; // not visible yet (EC2 is eventually consistent right after RunInstances)
      w.last = inst;
      try {
        if (w.until(inst)) this.settle(w, () => w.resolve(inst));
      } catch (e) {
        this.settle(w, () => w.reject(e));
        this.o.logger.debug({ instance: w.id, err: errorMessage(e) }, 'wait condition failed');
      }
    }
  }
}

/** DescribeInstances by id through a filter (not InstanceIds): an id EC2 does not know yet is simply absent
 *  instead of failing the whole call, and filtered, paginated calls get the larger Describe* rate bucket. */
export async function describeByIds(ec2: EC2Client, ids: string[]): Promise<Instance[]> {
  const out: Instance[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: ids }], MaxResults: 1000, ...(NextToken && { NextToken }) }));
    for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}
