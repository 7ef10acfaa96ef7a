// A machine's labels as instance tags: `fleetrunner:state` (idle | busy) and `fleetrunner:job` (the GitLab job
// id while busy, '' otherwise; an empty value rather than DeleteTags, so CreateTags is the only permission
// needed). Written with CreateTags on the running instance, read back by `list`.
//
// CreateTags has a request bucket of its own per account and region (100 requests refilled at 10 per second,
// as we read AWS's throttling page; accounts can differ). A coordinator labels a machine twice per job, so a
// burst comes only from many jobs starting at once; the pacer below keeps us at half that rate, leaving the
// rest of the bucket to other tools in the account, and throttling that still happens is retried with backoff (throttle-retry.ts). Labels of one
// instance are written one call at a time and in order; a label superseded while it waited is never sent,
// so the last word always wins and a busy→idle pair cannot arrive reversed.

import { CreateTagsCommand, type EC2Client, type Tag } from '@aws-sdk/client-ec2';

import type { Clock } from '../../core/clock.js';
import { NotFoundError, PermanentError, RetryableError } from '../../core/errors.js';
import { checkMachineLabels, machineLabelsOf, type MachineLabels } from '../../core/machine.js';
import { classifyEc2Error } from './classify-error.js';
import { RequestPacer } from './request-pacer.js';
import { withThrottleRetry } from './throttle-retry.js';

export const TAG_STATE = 'fleetrunner:state';
export const TAG_JOB = 'fleetrunner:job';

export function labelTags(l: MachineLabels): Tag[] {
  return [
    { Key: TAG_STATE, Value: l.state },
    { Key: TAG_JOB, Value: l.state === 'busy' ? l.job : '' },
  ];
}

/** The labels an instance's tags (as a map) carry, if any. */
export function labelsOf(tags: Readonly<Record<string, string>>): MachineLabels | undefined {
  return machineLabelsOf(tags[TAG_STATE], tags[TAG_JOB]);
}

export interface LabelWriterOptions {
  ec2: EC2Client;
  clock: Clock;
  /** Default: 10 requests at once, then 5 per second (half of AWS's CreateTags bucket). */
  pacer?: RequestPacer;
  random?: () => number;
}

interface Pending {
  labels: MachineLabels;
  waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
}

export class LabelWriter {
  private readonly pacer: RequestPacer;
  private readonly pending = new Map<string, Pending>();
  private readonly writing = new Set<string>();

  constructor(private readonly o: LabelWriterOptions) {
    this.pacer = o.pacer ?? new RequestPacer({ clock: o.clock, burst: 10, perSecond: 5 });
  }

  /** Resolves once `labels` (or labels given later for the same instance) are on the instance. */
  write(id: string, labels: MachineLabels): Promise<void> {
    checkMachineLabels(labels);
    return new Promise<void>((resolve, reject) => {
      const p = this.pending.get(id);
      if (p) {
        p.labels = labels;
        p.waiters.push({ resolve, reject });
      } else this.pending.set(id, { labels, waiters: [{ resolve, reject }] });
      if (!this.writing.has(id)) void this.drain(id);
    });
  }

  private async drain(id: string): Promise<void> {
    this.writing.add(id);
    try {
      for (let next = this.pending.get(id); next; next = this.pending.get(id)) {
        this.pending.delete(id);
        try {
          await this.send(id, next.labels);
          for (const w of next.waiters) w.resolve();
        } catch (e) {
          for (const w of next.waiters) w.reject(e);
        }
      }
    } finally {
      this.writing.delete(id);
    }
  }

  private async send(id: string, labels: MachineLabels): Promise<void> {
    try {
      await withThrottleRetry(
        async () => {
          await this.pacer.take();
          return this.o.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: labelTags(labels) }));
        },
        { clock: this.o.clock, ...(this.o.random && { random: this.o.random }) },
      );
    } catch (e) {
      const c = classifyEc2Error(e);
      const msg = `EC2 CreateTags (labels ${labels.state} of ${id}) failed: ${c.code}: ${c.message}`;
      if (c.kind === 'not-found') throw new NotFoundError(`instance ${id} does not exist (any more): its labels were not stored`, { cause: e });
      throw c.kind === 'throttled' || c.kind === 'transient' ? new RetryableError(`${msg} (still failing after retries)`, { cause: e }) : new PermanentError(msg, { cause: e });
    }
  }
}
