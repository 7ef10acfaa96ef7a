// Task definitions per (image, cpu, memory), registered on demand, cached, reused, deregistered when unused.
//
// The family name carries the definition's content (task-input.ts), so an ACTIVE revision of that family is
// the definition we want: one registered by an earlier coordinator of the deployment is found with one
// DescribeTaskDefinition and reused, not registered again. Concurrent jobs with the same key share one
// registration in flight. Each task holds its definition until it is stopped; a definition nobody holds for
// `definitionIdleMs` is deregistered at the next `sweep` (after a create or terminate), so images that are
// no longer used do not pile up as ACTIVE revisions. A deregistration that fails is tried again next sweep.

import { DeregisterTaskDefinitionCommand, DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand, type ECSClient } from '@aws-sdk/client-ecs';

import type { Clock } from '../../core/clock.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { FargateProviderConfig } from '../../core/provider-config.js';
import { withThrottleRetry } from '../ec2/throttle-retry.js';
import { classifyEcsError } from './classify-error.js';
import { familyOf, registerInput, type DefinitionKey } from './task-input.js';

interface Entry {
  family: string;
  arn: Promise<string>;
  holders: Set<string>;
  unusedSince?: number;
}

export interface TaskDefinitionsOptions {
  ecs: ECSClient;
  config: FargateProviderConfig;
  clock: Clock;
  logger: Logger;
  fleet: string;
  executor: string;
}

export class TaskDefinitions {
  private readonly entries = new Map<string, Entry>();
  private readonly holderOf = new Map<string, string>();

  constructor(private readonly o: TaskDefinitionsOptions) {}

  /** The definition's ARN for `key`, registering it if no ACTIVE revision of its family exists. */
  async arnFor(key: DefinitionKey): Promise<{ family: string; arn: string }> {
    const family = familyOf(this.o.fleet, this.o.executor, key, this.o.config);
    let e = this.entries.get(family);
    if (!e) {
      e = { family, arn: this.find(family, key), holders: new Set(), unusedSince: this.o.clock.now() };
      this.entries.set(family, e);
      e.arn.catch(() => this.entries.delete(family)); // not cached: the next job tries again
    }
    return { family, arn: await e.arn };
  }

  /** `task` runs on `family`'s definition until `release(task)`. */
  hold(family: string, task: string): void {
    const e = this.entries.get(family);
    if (!e) return;
    e.holders.add(task);
    delete e.unusedSince;
    this.holderOf.set(task, family);
  }

  release(task: string): void {
    const family = this.holderOf.get(task);
    if (family === undefined) return;
    this.holderOf.delete(task);
    const e = this.entries.get(family);
    if (!e) return;
    e.holders.delete(task);
    if (e.holders.size === 0) e.unusedSince = this.o.clock.now();
  }

  /** Deregisters every definition nobody has held for definitionIdleMs. */
  async sweep(): Promise<void> {
    const now = this.o.clock.now();
    for (const e of [...this.entries.values()]) {
      if (e.holders.size > 0 || e.unusedSince === undefined || now - e.unusedSince < this.o.config.definitionIdleMs) continue;
      let arn: string;
      try {
        arn = await e.arn;
      } catch {
        continue;
      }
      this.entries.delete(e.family);
      try {
        await this.call(() => this.o.ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: arn })));
        this.o.logger.info({ taskDefinition: arn }, 'deregistered an unused task definition');
      } catch (err) {
        this.entries.set(e.family, e); // tried again at the next sweep
        this.o.logger.warn({ taskDefinition: arn, err: errorMessage(err) }, 'could not deregister an unused task definition');
      }
    }
  }

  /** Families this process knows, with their holders (for tests and logs). */
  known(): { family: string; holders: number }[] {
    return [...this.entries.values()].map((e) => ({ family: e.family, holders: e.holders.size }));
  }

  private async find(family: string, key: DefinitionKey): Promise<string> {
    try {
      const d = await this.call(() => this.o.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: family })));
      if (d.taskDefinition?.status === 'ACTIVE' && d.taskDefinition.taskDefinitionArn) return d.taskDefinition.taskDefinitionArn;
    } catch (err) {
      // A family never registered answers ClientException: register it. Anything else goes up.
      if (classifyEcsError(err).code !== 'ClientException') throw err;
    }
    const r = await this.call(() => this.o.ecs.send(new RegisterTaskDefinitionCommand(registerInput(family, key, this.o.config))));
    const arn = r.taskDefinition?.taskDefinitionArn;
    if (!arn) throw new Error(`RegisterTaskDefinition for ${family} answered no ARN`);
    this.o.logger.info({ taskDefinition: arn, image: key.image, cpu: key.size.cpu, memoryMiB: key.size.memoryMiB }, 'registered a task definition');
    return arn;
  }

  private call<T>(op: () => Promise<T>): Promise<T> {
    return withThrottleRetry(op, { clock: this.o.clock });
  }
}
