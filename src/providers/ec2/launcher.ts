// Launches one instance: walks the placement's pools in order, one RunInstances call per pool (paced, and
// retried in place when throttled). A capacity error benches the pool and moves on at once; any other error
// ends the walk, because a bad parameter or a missing permission fails the same way in every pool.
//
// Why RunInstances (one instance per call) and not CreateFleet type `instant`: our placement loop wants
// per-call control of subnet, type and market (to rotate AZs and bench exactly the pool that failed), each
// instance carries its own user data (its own SSH host key) so one call per instance is needed anyway, and
// RunInstances fails with one clear error code, where CreateFleet reports errors as partial results mixed
// with launched instances (and needs a launch template to carry per-instance user data).

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

/** Builds the request for a pool; the launcher supplies a fresh client token per pool. */
export type LaunchRequest = (pool: Pool, clientToken: string) => RunInstancesCommandInput;

export class Launcher {
  constructor(private readonly o: LauncherOptions) {}

  /** `onDemandOnly`: only on-demand pools (see Placement.plan). */
  async launch(request: LaunchRequest, onDemandOnly = false): Promise<Launched> {
    const tried: string[] = [];
    const plan = this.o.placement.plan(onDemandOnly);
    for (const pool of plan) {
      // A concurrent launch (or a market-wide error a moment ago) may have benched it since the plan was made.
      if (this.o.placement.isBenched(pool)) continue;
      try {
        const instance = await this.runOne(request, pool);
        this.o.logger.info({ executor: this.o.executor, instance: instance.InstanceId, pool: describePool(pool) }, 'launched EC2 instance');
        return { instance, pool };
      } catch (e) {
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
        if (c.kind === 'throttled' || c.kind === 'transient') throw new RetryableError(`${what} (still failing after retries)`, { cause: e });
        throw new PermanentError(what, { cause: e });
      }
    }
    throw new InsufficientCapacityError(this.exhausted(tried));
  }

  private async runOne(request: LaunchRequest, pool: Pool): Promise<Launched['instance']> {
    const input = request(pool, (this.o.newClientToken ?? randomUUID)());
    const out = await withThrottleRetry(
      async () => {
        await this.o.pacer.take();
        return this.o.ec2.send(new RunInstancesCommand(input));
      },
      {
        clock: this.o.clock,
        ...(this.o.random && { random: this.o.random }),
        onRetry: (r) => this.o.logger.warn({ executor: this.o.executor, pool: describePool(pool), ...r }, 'RunInstances throttled: backing off'),
      },
    );
    const instance = out.Instances?.[0];
    if (!instance?.InstanceId) throw new RetryableError(`EC2 RunInstances (${describePool(pool)}) returned no instance`);
    return instance as Launched['instance'];
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
