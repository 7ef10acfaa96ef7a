// Launches instances: walks the placement's pools in order, one RunInstances call per pool (paced, and
// retried in place when throttled) for what is still missing. A capacity error benches the pool and moves
// on at once; any other error ends the walk, because a bad parameter or a missing permission fails the
// same way in every pool.
//
// Why RunInstances and not CreateFleet type `instant`: our placement loop wants per-call control of
// subnet, type and market (to rotate AZs and bench exactly the pool that failed), and RunInstances fails
// with one clear error code, where CreateFleet reports errors as partial results mixed with launched
// instances (and needs a launch template to carry the user data). One call launches several instances
// (MinCount 1, MaxCount n) when launches queue up (launch-batcher.ts); they share that call's user data.

import { randomUUID } from 'node:crypto';

import { RunInstancesCommand, type EC2Client, type Instance, type RunInstancesCommandInput } from '@aws-sdk/client-ec2';

import type { Clock } from '../../core/clock.js';
import { InsufficientCapacityError, PermanentError, RetryableError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { classifyEc2Error } from './classify-error.js';
import { describePool, type Placement, type Pool } from './placement.js';
import type { RequestPacer } from './request-pacer.js';
import { withThrottleRetry } from './throttle-retry.js';

export interface LauncherOptions {
  ec2: EC2Client;
  placement: Placement;
  pacer: RequestPacer;
  executor: string;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  newClientToken?: () => string;
}

export interface Launched {
  instance: Instance & { InstanceId: string };
  pool: Pool;
}

/** What one launch of `count` instances got: the instances, and why the rest (if any) were not launched. */
export interface LaunchedMany {
  launched: Launched[];
  /** Set when fewer than `count` were launched: the error the others fail with. */
  error?: Error;
}

/** Builds the request for a pool; the launcher supplies a fresh client token per call and how many
 *  instances the call may launch. */
export type LaunchRequest = (pool: Pool, clientToken: string, count: number) => RunInstancesCommandInput;

export interface LaunchOptions {
  /** Only on-demand pools (see Placement.plan). */
  onDemandOnly?: boolean;
  /** The caller already took the pacer's token for the first call. */
  prepaid?: boolean;
}

export class Launcher {
  constructor(private readonly o: LauncherOptions) {}

  /** One instance (see launchMany). */
  async launch(request: LaunchRequest, onDemandOnly = false): Promise<Launched> {
    const { launched, error } = await this.launchMany(request, 1, { onDemandOnly });
    if (launched[0]) return launched[0];
    throw error ?? new RetryableError('EC2 RunInstances launched nothing');
  }

  /**
   * Up to `count` instances, MinCount 1 and MaxCount what is still missing per call. A pool that launches
   * fewer than asked had no more capacity: it is benched like a capacity error and the rest go on to the
   * next pool. A non-capacity error ends the walk (with what was launched so far).
   */
  async launchMany(request: LaunchRequest, count: number, opts: LaunchOptions = {}): Promise<LaunchedMany> {
    const tried: string[] = [];
    const launched: Launched[] = [];
    let prepaid = opts.prepaid ?? false;
    const plan = this.o.placement.plan(opts.onDemandOnly ?? false);
    for (const pool of plan) {
      // A concurrent launch (or a market-wide error a moment ago) may have benched it since the plan was made.
      if (this.o.placement.isBenched(pool)) continue;
      const want = count - launched.length;
      try {
        const instances = await this.runCall(request, pool, want, prepaid);
        prepaid = false;
        for (const instance of instances) launched.push({ instance, pool });
        this.o.logger.info(
          { executor: this.o.executor, instances: instances.map((i) => i.InstanceId), pool: describePool(pool) },
          instances.length === 1 ? 'launched EC2 instance' : 'launched EC2 instances',
        );
        if (launched.length >= count) return { launched };
        const code = 'InsufficientInstanceCapacity';
        this.o.placement.benchPool(pool, 'pool', code);
        tried.push(`${describePool(pool)}: ${code} (launched ${instances.length} of ${want})`);
      } catch (e) {
        prepaid = false;
        const c = classifyEc2Error(e);
        if (c.kind === 'capacity') {
          const benched = this.o.placement.benchPool(pool, c.scope ?? 'pool', c.code);
          tried.push(`${describePool(pool)}: ${c.code}`);
          this.o.logger.warn(
            { executor: this.o.executor, pool: describePool(pool), code: c.code, reason: c.message, benched: benched.length },
            'no EC2 capacity in pool: trying the next one',
          );
          continue;
        }
        const what = `EC2 RunInstances (${describePool(pool)}) failed: ${c.code}: ${c.message}`;
        if (c.kind === 'throttled' || c.kind === 'transient') return { launched, error: new RetryableError(`${what} (still failing after retries)`, { cause: e }) };
        return { launched, error: new PermanentError(what, { cause: e }) };
      }
    }
    return { launched, error: new InsufficientCapacityError(this.exhausted(tried)) };
  }

  private async runCall(request: LaunchRequest, pool: Pool, count: number, prepaid: boolean): Promise<Launched['instance'][]> {
    const input = request(pool, (this.o.newClientToken ?? randomUUID)(), count);
    let paid = prepaid;
    const out = await withThrottleRetry(
      async () => {
        if (paid) paid = false;
        else await this.o.pacer.take();
        return this.o.ec2.send(new RunInstancesCommand(input));
      },
      {
        clock: this.o.clock,
        ...(this.o.random && { random: this.o.random }),
        onRetry: (r) => this.o.logger.warn({ executor: this.o.executor, pool: describePool(pool), ...r }, 'RunInstances throttled: backing off'),
      },
    );
    const instances = (out.Instances ?? []).filter((i): i is Launched['instance'] => !!i.InstanceId);
    if (instances.length === 0) throw new RetryableError(`EC2 RunInstances (${describePool(pool)}) returned no instance`);
    return instances;
  }

  private exhausted(tried: string[]): string {
    const benched = this.o.placement.benched();
    const list = (items: string[]) => (items.length > 8 ? [...items.slice(0, 8), `… ${items.length - 8} more`] : items).join('; ');
    const what = tried.length
      ? `tried ${list(tried)}`
      : `every pool is cooling down after capacity errors (${list(benched.map((b) => `${describePool(b.pool)}: ${b.reason}`))})`;
    const back = benched[0] ? `; first pool back in rotation at ${new Date(benched[0].until).toISOString()}` : '';
    return `no EC2 capacity for executor "${this.o.executor}": ${what}${back}`;
  }
}
