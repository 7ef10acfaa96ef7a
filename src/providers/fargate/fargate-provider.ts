// The fargate provider: one ECS task per machine (per job), the job's image as written, driven through the
// agent the task's helper container delivers (task-input.ts; docs/architecture.md). Same contract as ec2 and
// local:
//   create     a task definition for (image, cpu, memory) from TaskDefinitions, then RunTask with one subnet
//              and one capacity provider at a time (placement.ts): RESOURCE:ENI → next subnet, no capacity
//              → next subnet or capacity provider, throttled → backoff (withThrottleRetry), permanent → fail
//              fast. Ownership tags and the key tags go on the task; startedBy names the fleet.
//   list       ListTasks by startedBy (RUNNING desired status), DescribeTasks with TAGS, filtered by tags;
//              a running task's connection from its key tags (what a successor adopts it with)
//   waitReady  DescribeTasks until RUNNING with an address, then the SSH probe; a task that stopped is its
//              stop reason as an error (task-state.ts: a failed pull is ImagePullError)
//   terminate  StopTask, always (a task is never reused after its job): not-found is success
// Why a task per job and no idle pool: a task's image is the job's, known only once the job is here.

import { randomBytes } from 'node:crypto';

import { DescribeTasksCommand, ListTasksCommand, RunTaskCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';

import { AGENT_BUILDS_DIR, AGENT_CACHE_DIR, AGENT_STATE_DIR } from '../../core/agent-bundle.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { InsufficientCapacityError, NotFoundError, PermanentError, RetryableError, errorMessage } from '../../core/errors.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { CapacityProvider, ConnectionInfo, CreateOptions, CreateResult, Machine, OwnershipTags } from '../../core/machine.js';
import type { FargateProviderConfig } from '../../core/provider-config.js';
import { MachineIdentity, isRefusal } from '../ec2/machine-identity.js';
import { TAG_COORDINATOR, TAG_EXECUTOR, TAG_FLEET } from '../ec2/ownership-tags.js';
import { sshReadinessProbe, type ReadinessProbe } from '../ec2/ssh-probe.js';
import { withThrottleRetry } from '../ec2/throttle-retry.js';
import { generateEd25519 } from '../ssh-keys.js';
import { classifyEcsError, classifyRunFailure } from './classify-error.js';
import { FargatePlacement, type FargateSlot } from './placement.js';
import { runTaskInput, startedByOf } from './task-input.js';
import { TaskDefinitions } from './task-definitions.js';
import { decideTaskSize } from '../../core/fargate-task-size.js';
import { privateAddress, stopError, toMachineState } from './task-state.js';


export interface FargateProviderOptions {
  ecs: ECSClient;
  config: FargateProviderConfig;
  executor: string;
  fleet: string;
  /** The deployment's secret the agent's client key is derived from (as for EC2 instances). */
  keySecret?: Uint8Array;
  clock?: Clock;
  logger?: Logger;
  /** Seam: one readiness check. Default: SSH login with the pinned host key and `true`. */
  readinessProbe?: ReadinessProbe;
  /** DescribeTasks polling while waiting for RUNNING, and the pause between probes. Default 2 s. */
  pollIntervalMs?: number;
}

export class FargateProvider implements CapacityProvider {
  readonly name = 'fargate';
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly identity: MachineIdentity;
  private readonly placement: FargatePlacement;
  private readonly definitions: TaskDefinitions;
  private readonly probe: ReadinessProbe;
  private readonly startedBy: string;

  constructor(private readonly o: FargateProviderOptions) {
    this.clock = o.clock ?? systemClock;
    this.log = (o.logger ?? silentLogger).child({ provider: 'fargate', executor: o.executor });
    this.identity = new MachineIdentity(o.keySecret ?? randomBytes(32), `fleetrunner-${o.executor}`);
    const c = o.config;
    this.placement = new FargatePlacement({ subnets: c.subnets, strategy: c.capacityProviderStrategy, cooldownMs: c.capacityCooldownMs, clock: this.clock });
    this.definitions = new TaskDefinitions({ ecs: o.ecs, config: c, clock: this.clock, logger: this.log, fleet: o.fleet, executor: o.executor });
    this.probe = o.readinessProbe ?? sshReadinessProbe({ command: 'true' });
    this.startedBy = startedByOf(o.fleet);
  }

  async create(count: number, tags: OwnershipTags, opts: CreateOptions = {}): Promise<CreateResult> {
    if (count <= 0) return { machines: [], errors: [] };
    const settled = await Promise.allSettled(Array.from({ length: count }, () => this.createOne(tags, opts)));
    void this.definitions.sweep();
    return {
      machines: settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : [])),
      errors: settled.flatMap((s) => (s.status === 'rejected' ? [s.reason instanceof Error ? s.reason : new Error(String(s.reason))] : [])),
    };
  }

  private async createOne(owner: OwnershipTags, opts: CreateOptions): Promise<Machine> {
    const task = opts.task ?? {};
    if (task.services?.length) {
      throw new PermanentError(`the fargate executor "${this.o.executor}" runs no services (${task.services.join(', ')}): route jobs with services: to an ec2 docker executor (docs/architecture.md)`);
    }
    const size = decideTaskSize(task, this.o.config);
    if (!size.ok) throw new PermanentError(`invalid task size for executor "${this.o.executor}": ${size.reason}`);
    const image = task.image || this.o.config.image;
    const def = await this.aws(() => this.definitions.arnFor({ image, size: size.size }));
    const host = generateEd25519(`fleetrunner-${this.o.executor}-host`);
    const issued = this.identity.issue(host.public);
    const machineTags = { [TAG_FLEET]: owner.fleet, [TAG_EXECUTOR]: owner.executor, [TAG_COORDINATOR]: owner.coordinator, ...issued.tags };
    const reasons: string[] = [];
    for (const slot of this.placement.candidates(opts.market === 'on-demand')) {
      const input = runTaskInput(
        { definitionArn: def.arn, subnet: slot.subnet, capacityProvider: slot.capacityProvider, startedBy: this.startedBy, tags: machineTags, hostPrivateKey: host.private, authorizedKey: issued.clientPublicKey },
        this.o.config,
      );
      const r = await this.aws(() => this.o.ecs.send(new RunTaskCommand(input)));
      const started = r.tasks?.[0];
      if (started?.taskArn) {
        const id = taskId(started.taskArn);
        this.definitions.hold(def.family, id);
        this.log.info({ task: id, image, cpu: size.size.cpu, memoryMiB: size.size.memoryMiB, ...slot }, 'started a task');
        return this.toMachine(started, owner);
      }
      const failure = classifyRunFailure(r.failures?.[0] ?? {});
      if (failure.kind === 'permanent') throw new PermanentError(`RunTask failed: ${failure.reason}`);
      this.placement.bench(slot, failure.scope);
      reasons.push(`${describeSlot(slot)}: ${failure.reason}`);
      this.log.warn({ ...slot, reason: failure.reason }, 'no capacity for a task there; trying the next subnet or capacity provider');
    }
    throw new InsufficientCapacityError(reasons.length ? `no Fargate capacity: ${reasons.join('; ')}` : 'no Fargate capacity: every subnet and capacity provider is cooling down after a shortage');
  }

  async list(tags: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.aws(() => this.o.ecs.send(new ListTasksCommand({ cluster: this.o.config.cluster, startedBy: this.startedBy, desiredStatus: 'RUNNING', maxResults: 100, ...(nextToken && { nextToken }) })));
      arns.push(...(page.taskArns ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const out: Machine[] = [];
    for (const t of await this.describe(arns, true)) {
      const m = tagsOf(t);
      if (m[TAG_FLEET] !== tags.fleet || (tags.executor !== undefined && m[TAG_EXECUTOR] !== tags.executor) || (tags.coordinator !== undefined && m[TAG_COORDINATOR] !== tags.coordinator)) continue;
      const machine = this.toMachine(t, { fleet: m[TAG_FLEET]!, executor: m[TAG_EXECUTOR] ?? '', coordinator: m[TAG_COORDINATOR] ?? '' });
      const who = this.identity.recover(m);
      const ip = privateAddress(t);
      // A successor reaches a running task with what its tags give (as an instance): it can then be adopted.
      if (isRefusal(who)) machine.unreachable = `${who.reason}: ${who.message}`;
      else if (machine.state === 'running' && ip) machine.connection = this.connection(ip, who.clientPrivateKey, who.hostPublicKey);
      out.push(machine);
    }
    return out;
  }

  async waitReady(machine: Machine, signal?: AbortSignal): Promise<ConnectionInfo> {
    const deadline = this.clock.now() + this.o.config.bootTimeoutMs;
    const interval = this.o.pollIntervalMs ?? 2_000;
    let last: unknown;
    for (;;) {
      signal?.throwIfAborted();
      const [t] = await this.describe([machine.id], true);
      if (!t) throw new NotFoundError(`task ${machine.id} is gone`);
      if (t.lastStatus === 'STOPPED' || t.desiredStatus === 'STOPPED') throw stopError(t);
      const ip = privateAddress(t);
      if (t.lastStatus === 'RUNNING' && ip) {
        const who = this.identity.recover(tagsOf(t));
        if (isRefusal(who)) throw new PermanentError(`task ${machine.id} cannot be reached: ${who.message}`);
        const info = this.connection(ip, who.clientPrivateKey, who.hostPublicKey);
        try {
          await this.probe(info, { signal: signal ?? new AbortController().signal, timeoutMs: Math.max(1_000, deadline - this.clock.now()) });
          return info;
        } catch (e) {
          last = e;
        }
      }
      if (this.clock.now() >= deadline) throw new RetryableError(`task ${machine.id} was not ready within ${this.o.config.bootTimeoutMs} ms${last ? `: ${errorMessage(last)}` : ` (last status ${t.lastStatus ?? 'unknown'})`}`);
      await this.clock.sleep(Math.min(interval, Math.max(0, deadline - this.clock.now())), signal);
    }
  }

  async terminate(ids: string[]): Promise<{ errors: Error[] }> {
    const errors: Error[] = [];
    for (const id of ids) {
      try {
        await withThrottleRetry(() => this.o.ecs.send(new StopTaskCommand({ cluster: this.o.config.cluster, task: id, reason: 'fleetrunner: the job is over or the machine is not needed' })), { clock: this.clock });
      } catch (e) {
        const c = classifyEcsError(e);
        if (c.kind !== 'not-found') errors.push(c.kind === 'permanent' ? new PermanentError(`StopTask ${id}: ${c.message}`) : new RetryableError(`StopTask ${id}: ${c.message}`));
      }
      this.definitions.release(id);
    }
    await this.definitions.sweep();
    return { errors };
  }

  async shutdown(): Promise<void> {}

  /** The task definitions this process registered or reused (tests, logs). */
  knownDefinitions(): { family: string; holders: number }[] {
    return this.definitions.known();
  }

  private connection(host: string, privateKey: string, hostPublicKey: string): ConnectionInfo {
    return { host, port: this.o.config.agentPort, username: 'fleetrunner', privateKey, hostPublicKey, buildsDir: AGENT_BUILDS_DIR, cacheDir: AGENT_CACHE_DIR, stateDir: AGENT_STATE_DIR };
  }

  private toMachine(t: Task, owner: OwnershipTags): Machine {
    return { id: taskId(t.taskArn ?? ''), executor: owner.executor, state: toMachineState(t, this.log), createdAt: (t.createdAt ?? new Date(this.clock.now())).getTime(), tags: owner };
  }

  private async describe(refs: string[], withTags: boolean): Promise<Task[]> {
    const out: Task[] = [];
    for (let i = 0; i < refs.length; i += 100) {
      const r = await this.aws(() => this.o.ecs.send(new DescribeTasksCommand({ cluster: this.o.config.cluster, tasks: refs.slice(i, i + 100), ...(withTags && { include: ['TAGS'] }) })));
      out.push(...(r.tasks ?? []));
    }
    return out;
  }

  /** Throttled and transient answers are retried with backoff; the rest become the core's typed errors. */
  private async aws<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await withThrottleRetry(op, { clock: this.clock });
    } catch (e) {
      if (e instanceof PermanentError || e instanceof RetryableError || e instanceof InsufficientCapacityError) throw e;
      const c = classifyEcsError(e);
      if (c.kind === 'permanent') throw new PermanentError(`ECS ${c.code}: ${c.message}`, { cause: e });
      if (c.kind === 'not-found') throw new NotFoundError(`ECS ${c.code}: ${c.message}`, { cause: e });
      throw new RetryableError(`ECS ${c.code}: ${c.message}`, { cause: e });
    }
  }
}

function taskId(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

function tagsOf(t: Task): Record<string, string> {
  return Object.fromEntries((t.tags ?? []).filter((x) => x.key).map((x) => [x.key!, x.value ?? '']));
}

function describeSlot(s: FargateSlot): string {
  return `${s.capacityProvider} in ${s.subnet}`;
}
