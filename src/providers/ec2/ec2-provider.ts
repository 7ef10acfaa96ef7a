// Machines that are EC2 instances. EC2 is the source of truth: every instance carries ownership tags from
// launch and is found again only by them, and its key tags let any coordinator of the deployment reach it
// (machine-identity.ts); its labels (instance-labels.ts) say what it was doing. What this process keeps in
// memory is a cache of machines' SSH keys (machine-keys.ts) and the placement's bench of pools that
// recently had no capacity.

import { randomBytes } from 'node:crypto';

import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import type { SSMClient } from '@aws-sdk/client-ssm';

import type { Ec2ProviderConfig } from '../../core/provider-config.js';
import {
  PermanentError,
  RetryableError,
  errorMessage,
  silentLogger,
  systemClock,
  type CapacityProvider,
  type Clock,
  type ConnectionInfo,
  type CreateOptions,
  type CreateResult,
  type Logger,
  type Machine,
  type MachineLabels,
  type OwnershipTags,
} from '../../core/index.js';
import { AmiResolver } from './ami.js';
import { LostDuringBootError, ProbeTimeoutError, waitForBoot } from './boot-wait.js';
import { classifyEc2Error } from './classify-error.js';
import { InstanceTerminator } from './instance-terminator.js';
import { LabelWriter, labelsOf } from './instance-labels.js';
import { InstanceWatcher, WaitTimeoutError, WatcherStoppedError, describeByIds } from './instance-watcher.js';
import { LISTED_STATES, isGone, toMachineState } from './instance-state.js';
import { runInstancesInput } from './launch-input.js';
import { LaunchBatcher, type BatchKey, type LaunchResult } from './launch-batcher.js';
import { Launcher } from './launcher.js';
import { MachineIdentity, isRefusal } from './machine-identity.js';
import { MachineKeys, defaultKeyPairGenerator, type KeyPairGenerator, type MachineSecrets } from './machine-keys.js';
import { ownershipFilters, ownershipOf, tagMap } from './ownership-tags.js';
import { Placement, describePool } from './placement.js';
import { RequestPacer } from './request-pacer.js';
import { sshReadinessProbe, type ReadinessProbe } from './ssh-probe.js';
import { withThrottleRetry } from './throttle-retry.js';
import { EC2_BUILDS_DIR, EC2_CACHE_DIR, EC2_STATE_DIR, readUserDataTemplate, renderUserData } from './user-data.js';

export interface Ec2ProviderOptions {
  /** From aws/clients.ts (one region per executor: `config.region`). */
  clients: { ec2: EC2Client; ssm: SSMClient };
  config: Ec2ProviderConfig;
  /** Executor name: in the Name tag, the user data and logs. */
  executor: string;
  /** Fleet name: in the Name tag and logs (ownership tags come with each create call). */
  fleet: string;
  /** Bound of waitReady: running, then the readiness probe answering. */
  bootTimeoutMs: number;
  /**
   * The deployment's secret (at least 32 bytes) from which each instance's client key is derived, so that
   * every coordinator of the deployment can reach every instance (cli/ derives it from the runner token).
   * Default: random for this process, whose instances then no other process can reach.
   */
  keySecret?: Uint8Array;
  clock?: Clock;
  logger?: Logger;
  /** Seam: makes the per-machine host key pairs. Default: ed25519 via ssh2. */
  generateKeyPair?: KeyPairGenerator;
  /** Seam: one readiness check. Default: SSH login with the pinned host key + `docker info`. */
  readinessProbe?: ReadinessProbe;
  /** Pause between readiness probe attempts. Default 2 s. */
  probeIntervalMs?: number;
  /** DescribeInstances polling while waiting for `running`. Default 2 s growing to 10 s. */
  pollIntervalMs?: { min: number; max: number };
  /** Seam: SSH port on the instances. Default 22. */
  sshPort?: number;
  /** Seam: [0,1) for backoff jitter. Default Math.random. */
  random?: () => number;
  /** Cloud-init template text; default: the file `config.userDataTemplate` names, else the package's. */
  userDataTemplate?: string;
  /** Asked at every launch: true while the spot circuit breaker is open (fleet/spot-breaker.ts), so every
   *  machine, the idle pool's too, is on-demand until it closes. Default: never. */
  onDemandOnly?: () => boolean;
}

/** Launches batch only with launches for the same owner and market choice. */
interface LaunchKey extends BatchKey {
  owner: OwnershipTags;
  onDemandOnly: boolean;
}

interface PreparedLaunch {
  imageId: string;
  hostPublicKey: string;
  client: ReturnType<MachineIdentity['issue']>;
  userData: string;
  name: string;
}

export class Ec2Provider implements CapacityProvider {
  readonly name = 'ec2';
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly keys: MachineKeys;
  private readonly placement: Placement;
  private readonly launcher: Launcher;
  private readonly batcher: LaunchBatcher<LaunchKey, Machine, PreparedLaunch>;
  private readonly ami: AmiResolver;
  private readonly watcher: InstanceWatcher;
  private readonly terminator: InstanceTerminator;
  private readonly probe: ReadinessProbe;
  private readonly template: string;
  private readonly newKeyPair: KeyPairGenerator;
  private readonly identity: MachineIdentity;
  private readonly labels: LabelWriter;

  constructor(private readonly o: Ec2ProviderOptions) {
    const c = o.config;
    if (c.connectVia === 'public' && !c.associatePublicIp) {
      throw new PermanentError(`executor "${o.executor}": ec2.connectVia public needs ec2.associatePublicIp: true`);
    }
    this.clock = o.clock ?? systemClock;
    this.log = (o.logger ?? silentLogger).child({ provider: 'ec2', executor: o.executor });
    this.newKeyPair = o.generateKeyPair ?? defaultKeyPairGenerator;
    this.identity = new MachineIdentity(o.keySecret ?? randomBytes(32), `fleetrunner-${o.executor}`);
    this.keys = new MachineKeys(this.identity);
    this.probe = o.readinessProbe ?? sshReadinessProbe();
    // Read once at start: a missing or broken template fails the coordinator's start, not every launch.
    this.template = o.userDataTemplate ?? readUserDataTemplate(c.userDataTemplate);
    const random = o.random ? { random: o.random } : {};
    this.placement = new Placement({
      subnets: c.subnets,
      instanceTypes: c.instanceTypes,
      spot: c.spot,
      onDemandFallback: c.onDemandFallback,
      cooldownMs: c.capacityCooldownMs,
      clock: this.clock,
    });
    const pacer = new RequestPacer({ clock: this.clock });
    this.launcher = new Launcher({
      ec2: o.clients.ec2,
      placement: this.placement,
      pacer,
      executor: o.executor,
      clock: this.clock,
      logger: this.log,
      ...random,
    });
    this.batcher = new LaunchBatcher({
      pacer,
      maxBatch: c.launchBatch ?? 50,
      prepare: (key) => this.prepareLaunch(key),
      launch: (p, key, n) => this.launchBatch(p, key, n),
    });
    this.ami = new AmiResolver({ ssm: o.clients.ssm, parameter: c.amiParameter, clock: this.clock, logger: this.log, ...(c.ami && { ami: c.ami }), ...random });
    this.watcher = new InstanceWatcher({
      ec2: o.clients.ec2,
      clock: this.clock,
      logger: this.log,
      ...(o.pollIntervalMs && { minIntervalMs: o.pollIntervalMs.min, maxIntervalMs: o.pollIntervalMs.max }),
    });
    this.labels = new LabelWriter({ ec2: o.clients.ec2, clock: this.clock, ...random });
    this.terminator = new InstanceTerminator({
      ec2: o.clients.ec2,
      retrying: (op) => this.retrying(op),
      onGone: (ids) => ids.forEach((id) => this.keys.forget(id)),
      logger: this.log,
    });
  }

  async create(count: number, tags: OwnershipTags, opts: CreateOptions = {}): Promise<CreateResult> {
    const onDemandOnly = opts.market === 'on-demand' || (this.o.onDemandOnly?.() ?? false);
    const key: LaunchKey = { id: JSON.stringify([tags.fleet, tags.executor, tags.coordinator, onDemandOnly]), owner: { ...tags }, onDemandOnly };
    const settled = await Promise.allSettled(Array.from({ length: count }, () => this.batcher.launch(key)));
    const result: CreateResult = { machines: [], errors: [] };
    for (const s of settled) {
      if (s.status === 'fulfilled') result.machines.push(s.value);
      else result.errors.push(s.reason instanceof Error ? s.reason : new Error(String(s.reason)));
    }
    return result;
  }

  /** What one launch call carries whatever its size: the image, one host key pair and client nonce for
   *  every machine it launches (see launch-batcher.ts), the user data. */
  private async prepareLaunch(key: LaunchKey): Promise<PreparedLaunch> {
    const imageId = await this.ami.imageId();
    const host = this.newKeyPair(`fleetrunner-host-${this.o.executor}`);
    const client = this.identity.issue(host.public);
    const userData = renderUserData(
      this.o.config,
      this.o.executor,
      { clientPublicKey: client.clientPublicKey, hostPrivateKey: host.private, hostPublicKey: host.public },
      this.template,
    );
    return { imageId, hostPublicKey: host.public, client, userData, name: `fleetrunner ${key.owner.fleet}/${key.owner.executor}` };
  }

  /** One RunInstances walk for `count` machines of one prepared launch; the call's first pacer token is
   *  already taken. */
  private async launchBatch(p: PreparedLaunch, key: LaunchKey, count: number): Promise<Array<LaunchResult<Machine>>> {
    const owner = key.owner;
    const { imageId, client, userData, name } = p;
    const host = { public: p.hostPublicKey };
    const { launched, error } = await this.launcher.launchMany(
      (p, clientToken, n) => runInstancesInput({ config: this.o.config, imageId, pool: p, owner, name, userData, clientToken, machineTags: client.tags, count: n }),
      count,
      { onDemandOnly: key.onDemandOnly, prepaid: true },
    );
    const results: Array<LaunchResult<Machine>> = launched.map(({ instance, pool }) => {
      // The host private key is in the instance's user data now; the coordinator needs only its public half.
      this.keys.set(instance.InstanceId, { clientPrivateKey: client.clientPrivateKey, hostPublicKey: host.public, pool });
      return {
        ok: true,
        value: {
          id: instance.InstanceId,
          executor: owner.executor,
          state: toMachineState(instance.State?.Name, this.log, instance.InstanceId),
          createdAt: instance.LaunchTime?.getTime() ?? this.clock.now(),
          tags: { ...owner },
        },
      };
    });
    while (results.length < count) results.push({ ok: false, error: error ?? new RetryableError('EC2 RunInstances launched fewer instances than asked') });
    return results;
  }

  async list(filter: Partial<OwnershipTags> & Pick<OwnershipTags, 'fleet'>): Promise<Machine[]> {
    const machines: Machine[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.retrying(() =>
        this.o.clients.ec2.send(
          new DescribeInstancesCommand({
            Filters: [...ownershipFilters(filter), { Name: 'instance-state-name', Values: [...LISTED_STATES] }],
            MaxResults: 1000,
            ...(NextToken && { NextToken }),
          }),
        ),
      ).catch((e) => {
        throw this.asTyped('DescribeInstances', e);
      });
      for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) {
        const m = this.toMachine(i);
        if (m) machines.push(m);
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return machines;
  }

  private toMachine(i: Instance): Machine | undefined {
    const owner = ownershipOf(i.Tags);
    if (!i.InstanceId || !owner) return undefined;
    const tags = tagMap(i.Tags);
    const labels = labelsOf(tags);
    const m: Machine = {
      id: i.InstanceId,
      executor: owner.executor,
      state: toMachineState(i.State?.Name, this.log, i.InstanceId),
      createdAt: i.LaunchTime?.getTime() ?? 0,
      tags: owner,
      ...(labels && { labels }),
    };
    const secrets = this.keys.of(i.InstanceId, i);
    const host = this.addressOf(i);
    if (isRefusal(secrets)) m.unreachable = secrets.message;
    else if (m.state === 'running' && host) m.connection = this.connectionOf(secrets, host);
    return m;
  }

  /** Keys for an instance another process launched: read from its tags (one DescribeInstances). */
  private async inherit(id: string): Promise<MachineSecrets> {
    const [inst] = await this.retrying(() => describeByIds(this.o.clients.ec2, [id])).catch((e) => {
      throw this.asTyped('DescribeInstances', e);
    });
    if (!inst?.InstanceId) throw new PermanentError(`EC2 instance ${id} does not exist (any more): it cannot be reached`);
    if (isGone(inst.State?.Name)) throw new PermanentError(`EC2 instance ${id} is ${inst.State?.Name}: it cannot be reached`);
    const secrets = this.keys.of(id, inst);
    if (!isRefusal(secrets)) return secrets;
    this.log.warn({ instance: id, reason: secrets.reason }, 'EC2 instance cannot be reached: its key tags are refused');
    throw new PermanentError(`EC2 instance ${id} cannot be reached by this coordinator: ${secrets.message}`);
  }

  /**
   * Resolves once the instance answers SSH. An instance this process did not launch (a predecessor's) is
   * reached through its key tags; one whose tags are missing or not this deployment's is refused with a
   * PermanentError and left alone (garbage collection decides its fate). One that does not become ready
   * is terminated.
   */
  async waitReady(machine: Machine, signal?: AbortSignal): Promise<ConnectionInfo> {
    const secrets = this.keys.get(machine.id) ?? (await this.inherit(machine.id));
    const started = this.clock.now();
    try {
      const connection = await waitForBoot(
        machine.id,
        started + this.o.bootTimeoutMs,
        {
          watcher: this.watcher,
          probe: this.probe,
          clock: this.clock,
          probeIntervalMs: this.o.probeIntervalMs ?? 2_000,
          addressOf: (i) => this.addressOf(i),
          connectionTo: (host) => this.connectionOf(secrets, host),
        },
        signal,
      );
      this.log.info({ instance: machine.id, bootMs: this.clock.now() - started }, 'EC2 instance ready');
      return connection;
    } catch (e) {
      // The caller gave up, or we are shutting down: the machine's fate is the fleet's to decide.
      if (signal?.aborted || e instanceof WatcherStoppedError) throw e;
      // A spot instance taken back at once means its pool has no spot capacity right now.
      if (e instanceof LostDuringBootError && /InsufficientInstanceCapacity|Spot/i.test(e.reasonCode)) {
        this.placement.benchPool(secrets.pool, 'pool', e.reasonCode);
      }
      const what = `EC2 instance ${machine.id} (${describePool(secrets.pool)})`;
      const timedOut = e instanceof WaitTimeoutError || e instanceof ProbeTimeoutError;
      const why = errorMessage(e);
      const msg = timedOut ? `${what} was not ready within ${Math.round(this.o.bootTimeoutMs / 1000)} s: ${why}` : `${what} did not become ready: ${why}`;
      const { errors } = await this.terminate([machine.id]);
      const cleanup = errors.length ? ` (terminating it failed too: ${errors.map(errorMessage).join('; ')})` : '; terminated it';
      this.log.warn({ instance: machine.id, err: why }, 'EC2 instance not ready: terminated');
      throw e instanceof PermanentError ? new PermanentError(msg + cleanup, { cause: e }) : new RetryableError(msg + cleanup, { cause: e });
    }
  }

  async terminate(ids: string[]): Promise<{ errors: Error[] }> {
    return { errors: await this.terminator.terminate(ids) };
  }

  /** CreateTags `fleetrunner:state` and `fleetrunner:job` on the instance (paced, in order per instance). */
  async label(id: string, labels: MachineLabels): Promise<void> {
    await this.labels.write(id, labels);
  }

  async shutdown(): Promise<void> {
    this.watcher.stop();
  }

  private addressOf(i: Instance): string | undefined {
    return (this.o.config.connectVia === 'public' ? i.PublicIpAddress : i.PrivateIpAddress) || undefined;
  }

  private connectionOf(s: MachineSecrets, host: string): ConnectionInfo {
    return {
      host,
      port: this.o.sshPort ?? 22,
      username: this.o.config.sshUser,
      privateKey: s.clientPrivateKey,
      hostPublicKey: s.hostPublicKey,
      buildsDir: EC2_BUILDS_DIR,
      cacheDir: EC2_CACHE_DIR,
      stateDir: EC2_STATE_DIR,
    };
  }

  private retrying<T>(op: () => Promise<T>): Promise<T> {
    return withThrottleRetry(op, { clock: this.clock, ...(this.o.random && { random: this.o.random }) });
  }

  private asTyped(op: string, e: unknown): Error {
    const c = classifyEc2Error(e);
    const msg = `EC2 ${op} failed: ${c.code}: ${c.message}`;
    return c.kind === 'throttled' || c.kind === 'transient' ? new RetryableError(msg, { cause: e }) : new PermanentError(msg, { cause: e });
  }
}

