// TerminateInstances for any number of ids: batches of at most 1000 (the API's limit), idempotent (an id EC2
// does not know, or one that is not an instance id at all, cannot be a live machine of ours: success), and
// partial failures returned rather than thrown.

import { TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';

import { PermanentError, RetryableError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { classifyEc2Error, instanceIdsInMessage } from './classify-error.js';

export interface InstanceTerminatorOptions {
  ec2: EC2Client;
  /** Wraps each call in the throttle retry. */
  retrying: <T>(op: () => Promise<T>) => Promise<T>;
  /** Told which ids are gone (terminated now, or unknown to EC2). */
  onGone: (ids: readonly string[]) => void;
  logger: Logger;
}

const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const BATCH = 1000;

export class InstanceTerminator {
  constructor(private readonly o: InstanceTerminatorOptions) {}

  async terminate(ids: readonly string[]): Promise<Error[]> {
    const valid = [...new Set(ids)].filter((id) => INSTANCE_ID.test(id));
    const errors: Error[] = [];
    for (let i = 0; i < valid.length; i += BATCH) {
      const err = await this.batch(valid.slice(i, i + BATCH));
      if (err) errors.push(err);
    }
    return errors;
  }

  /** TerminateInstances fails as a whole when one id is unknown: drop the ids its message names, go again. */
  private async batch(batch: string[]): Promise<Error | undefined> {
    let ids = batch;
    while (ids.length > 0) {
      const current = ids;
      try {
        await this.o.retrying(() => this.o.ec2.send(new TerminateInstancesCommand({ InstanceIds: current })));
        this.o.onGone(current);
        this.o.logger.info({ instances: current }, 'terminated EC2 instances');
        return undefined;
      } catch (e) {
        const c = classifyEc2Error(e);
        if (c.kind !== 'not-found') {
          const msg = `EC2 TerminateInstances ${current.join(', ')} failed: ${c.code}: ${c.message}`;
          return c.kind === 'throttled' || c.kind === 'transient' ? new RetryableError(msg, { cause: e }) : new PermanentError(msg, { cause: e });
        }
        const missing = instanceIdsInMessage(c.message).filter((id) => current.includes(id));
        this.o.onGone(missing);
        // A message we cannot read: one id per call, so the unknown one cannot hold up the others.
        if (missing.length === 0) return current.length === 1 ? undefined : this.oneByOne(current);
        ids = current.filter((id) => !missing.includes(id));
      }
    }
    return undefined;
  }

  private async oneByOne(ids: string[]): Promise<Error | undefined> {
    const errs = (await Promise.all(ids.map((id) => this.batch([id])))).filter((e): e is Error => e !== undefined);
    return errs.length ? new Error(errs.map(errorMessage).join('; ')) : undefined;
  }
}
