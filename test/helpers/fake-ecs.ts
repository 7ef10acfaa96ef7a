// A stateful fake of the ECS API at the SDK boundary (aws-sdk-client-mock on a real ECSClient), as much of it
// as the fargate provider uses, strict where ECS is strict:
//   task definitions  RegisterTaskDefinition (FARGATE + awsvpc only, task-level cpu/memory from Fargate's
//                     table of valid combinations, a container list), revisions per family, Deregister
//                     (INACTIVE: RunTask refuses it, Describe still answers), Describe by ARN, family:rev, family
//   tasks             RunTask (cluster must exist, awsvpc subnets and security groups, launchType xor
//                     capacityProviderStrategy, count ≤ 10, tags ≤ 50 without `aws:`, startedBy ≤ 128 of
//                     [A-Za-z0-9_/-]), PROVISIONING → PENDING → RUNNING over DescribeTasks calls, a private
//                     IPv4 per subnet on its ENI attachment; StopTask with a reason (DEACTIVATING, then
//                     STOPPED with stopCode UserInitiated); ListTasks by startedBy / family / desiredStatus
//                     with pagination (STOPPED tasks stay listed under STOPPED, as ECS keeps them for a while)
//   failures          RunTask's `failures[]` for a subnet with no free address (`RESOURCE:ENI`), for a capacity
//                     provider with no capacity (FARGATE_SPOT first, then FARGATE, as ECS reports it); a task
//                     that stops by itself (`failTask`: CannotPullContainerError, spot interruption, an exit code)
//   throttling        ECS's published rates (docs: AmazonECS throttling): RunTask 20 calls burst, 20 per second;
//                     Fargate task launches 100 burst, 20 per second; other calls 50 burst, 20 per second; on
//                     the `now` clock, ThrottlingException beyond them; or `throttle(op, n)` for the next n calls
// With `hooks`, the test's own machinery plays each task (the real-Docker e2e: a container per task).
// `listen()` serves the same model over HTTP on loopback (ECS's JSON 1.1 protocol), for the built CLI
// (AWS_ENDPOINT_URL_ECS).

import {
  DeregisterTaskDefinitionCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  ECSServiceException,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  type DeregisterTaskDefinitionCommandInput,
  type DescribeTaskDefinitionCommandInput,
  type DescribeTasksCommandInput,
  type ListTasksCommandInput,
  type RegisterTaskDefinitionCommandInput,
  type RunTaskCommandInput,
  type StopTaskCommandInput,
  type Task,
  type TaskDefinition,
} from '@aws-sdk/client-ecs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { mockClient } from 'aws-sdk-client-mock';

export const FAKE_ECS_REGION = 'eu-west-1';
export const FAKE_ACCOUNT = '123456789012';
export const FAKE_CLUSTER = 'fr-jobs';
export const FAKE_ECS_SUBNETS: readonly string[] = ['subnet-0aaa1111', 'subnet-0bbb2222', 'subnet-0ccc3333'];

export type FakeEcsOp = 'RunTask' | 'DescribeTasks' | 'ListTasks' | 'StopTask' | 'RegisterTaskDefinition' | 'DeregisterTaskDefinition' | 'DescribeTaskDefinition';
type LastStatus = 'PROVISIONING' | 'PENDING' | 'ACTIVATING' | 'RUNNING' | 'DEACTIVATING' | 'STOPPING' | 'DEPROVISIONING' | 'STOPPED';

export interface FakeTask {
  arn: string;
  id: string;
  cluster: string;
  definitionArn: string;
  lastStatus: LastStatus;
  desiredStatus: 'RUNNING' | 'STOPPED';
  tags: Record<string, string>;
  startedBy?: string;
  subnet: string;
  privateIp: string;
  capacityProvider: string;
  createdAt: Date;
  stoppedReason?: string;
  stopCode?: string;
  /** Per container: exit code and reason once it stopped. */
  containers: { name: string; exitCode?: number; reason?: string }[];
  input: RunTaskCommandInput;
  /** DescribeTasks calls before it moves on a step (PROVISIONING → PENDING → RUNNING). */
  stepsLeft: number;
  /** Moved by `hooks` (setRunning / failTask), not by describe calls. */
  driven: boolean;
}

export interface FakeEcsHooks {
  /** RunTask started `task`: it stays PROVISIONING until the hook calls setRunning (or failTask). */
  onRun(task: FakeTask, definition: TaskDefinition): void;
  /** StopTask reached `task`, once. */
  onStop(task: FakeTask): void;
}

export interface FakeEcsOptions {
  /** Describes a task takes per step to RUNNING (two steps). Default 1; Infinity: until the test says so. */
  stepDescribes?: number;
  now?: () => number;
  hooks?: FakeEcsHooks;
  /** The private address of the n-th task (from 1). Default 10.0.<subnet index>.<n>. */
  privateIp?: (n: number, subnet: string) => string;
}

/** Fargate's valid task sizes: cpu units → memory MiB (AWS's table, Linux). */
const FARGATE_SIZES: readonly { cpu: number; min: number; max: number; step: number }[] = [
  { cpu: 256, min: 512, max: 2048, step: 512 }, // 512, 1024, 2048 (1536 is not valid: checked below)
  { cpu: 512, min: 1024, max: 4096, step: 1024 },
  { cpu: 1024, min: 2048, max: 8192, step: 1024 },
  { cpu: 2048, min: 4096, max: 16384, step: 1024 },
  { cpu: 4096, min: 8192, max: 30720, step: 1024 },
  { cpu: 8192, min: 16384, max: 61440, step: 4096 },
  { cpu: 16384, min: 32768, max: 122880, step: 8192 },
];

function fargateSizeValid(cpu: number, memory: number): boolean {
  if (cpu === 256) return [512, 1024, 2048].includes(memory);
  const row = FARGATE_SIZES.find((r) => r.cpu === cpu);
  return row !== undefined && memory >= row.min && memory <= row.max && (memory - row.min) % row.step === 0;
}

export function ecsError(code: string, message: string, status = 400): ECSServiceException {
  return new ECSServiceException({ name: code, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

interface Bucket {
  burst: number;
  perSecond: number;
  tokens: number;
  at: number;
}

const STARTED_BY = /^[A-Za-z0-9_/-]{1,128}$/;
const SPOT_CAPACITY_REASON = 'Capacity is unavailable at this time. Please try again later or in a different availability zone';

export class FakeEcs {
  readonly client = new ECSClient({ region: FAKE_ECS_REGION, credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
  readonly tasks = new Map<string, FakeTask>();
  /** Every task definition ever registered, by ARN. */
  readonly definitions = new Map<string, TaskDefinition>();
  readonly clusters = new Set<string>([FAKE_CLUSTER]);
  readonly calls: Record<FakeEcsOp, number> = {
    RunTask: 0,
    DescribeTasks: 0,
    ListTasks: 0,
    StopTask: 0,
    RegisterTaskDefinition: 0,
    DeregisterTaskDefinition: 0,
    DescribeTaskDefinition: 0,
  };
  readonly runInputs: RunTaskCommandInput[] = [];
  /** Calls refused with ThrottlingException, by the rate buckets or `throttle`. */
  throttled = 0;
  stepDescribes: number;
  /** Subnets with no free address (RunTask answers RESOURCE:ENI). */
  readonly fullSubnets = new Set<string>();
  /** Capacity providers with no capacity (FARGATE_SPOT, FARGATE). */
  readonly noCapacity = new Set<string>();
  private readonly queued = new Map<FakeEcsOp, number>();
  private readonly errors = new Map<FakeEcsOp, ECSServiceException[]>();
  private readonly revisions = new Map<string, number>();
  private readonly runTaskBucket: Bucket = { burst: 20, perSecond: 20, tokens: 20, at: 0 };
  private readonly launchBucket: Bucket = { burst: 100, perSecond: 20, tokens: 100, at: 0 };
  private readonly otherBucket: Bucket = { burst: 50, perSecond: 20, tokens: 50, at: 0 };
  private seq = 0;
  private server?: Server;

  constructor(private readonly o: FakeEcsOptions = {}) {
    this.stepDescribes = o.stepDescribes ?? 1;
    const now = this.now();
    for (const b of [this.runTaskBucket, this.launchBucket, this.otherBucket]) b.at = now;
    const ecs = mockClient(this.client);
    ecs.on(RunTaskCommand).callsFake((i: RunTaskCommandInput) => this.call('RunTask', () => this.runTask(i)));
    ecs.on(DescribeTasksCommand).callsFake((i: DescribeTasksCommandInput) => this.call('DescribeTasks', () => this.describeTasks(i)));
    ecs.on(ListTasksCommand).callsFake((i: ListTasksCommandInput) => this.call('ListTasks', () => this.listTasks(i)));
    ecs.on(StopTaskCommand).callsFake((i: StopTaskCommandInput) => this.call('StopTask', () => this.stopTask(i)));
    ecs.on(RegisterTaskDefinitionCommand).callsFake((i: RegisterTaskDefinitionCommandInput) => this.call('RegisterTaskDefinition', () => this.register(i)));
    ecs.on(DeregisterTaskDefinitionCommand).callsFake((i: DeregisterTaskDefinitionCommandInput) => this.call('DeregisterTaskDefinition', () => this.deregister(i)));
    ecs.on(DescribeTaskDefinitionCommand).callsFake((i: DescribeTaskDefinitionCommandInput) => this.call('DescribeTaskDefinition', () => this.describeDefinition(i)));
  }

  /** Serves the model over HTTP on 127.0.0.1 (ECS JSON 1.1); returns the endpoint URL. */
  async listen(): Promise<string> {
    const ops: Record<FakeEcsOp, (i: never) => unknown> = {
      RunTask: (i) => this.runTask(i),
      DescribeTasks: (i) => this.describeTasks(i),
      ListTasks: (i) => this.listTasks(i),
      StopTask: (i) => this.stopTask(i),
      RegisterTaskDefinition: (i) => this.register(i),
      DeregisterTaskDefinition: (i) => this.deregister(i),
      DescribeTaskDefinition: (i) => this.describeDefinition(i),
    };
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const op = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonEC2ContainerServiceV20141113\./, '') as FakeEcsOp;
        const send = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `fake-${this.seq}` });
          // Timestamps are epoch seconds in ECS's JSON protocol.
          res.end(JSON.stringify(payload, function (this: Record<string, unknown>, k, v: unknown) {
            const raw = this[k];
            return raw instanceof Date ? raw.getTime() / 1000 : v;
          }));
        };
        const f = ops[op];
        if (!f) return send(400, { __type: 'UnknownOperationException', message: `fake ECS: ${op} is not modelled` });
        this.call(op, () => f(JSON.parse(body || '{}') as never)).then(
          (out) => send(200, out),
          (e: unknown) => {
            const err = e instanceof ECSServiceException ? e : ecsError('ServerException', String(e), 500);
            send(err.$metadata.httpStatusCode ?? 400, { __type: err.name, message: err.message });
          },
        );
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  // ---- what the test tells the fake ----

  /** The next `n` calls of `op` answer ThrottlingException. */
  throttle(op: FakeEcsOp, n = 1): void {
    this.queued.set(op, (this.queued.get(op) ?? 0) + n);
  }

  /** The next call of `op` answers `err`. */
  failNext(op: FakeEcsOp, err: ECSServiceException): void {
    this.errors.set(op, [...(this.errors.get(op) ?? []), err]);
  }

  /** The task stops by itself, as ECS stops it: a pull that failed, a spot interruption, an essential exit. */
  failTask(id: string, how: { stopCode: string; stoppedReason: string; container?: { name: string; exitCode?: number; reason?: string } }): void {
    const t = this.task(id);
    t.lastStatus = 'STOPPED';
    t.desiredStatus = 'STOPPED';
    t.stopCode = how.stopCode;
    t.stoppedReason = how.stoppedReason;
    if (how.container) t.containers = t.containers.map((c) => (c.name === how.container!.name ? { ...how.container! } : c));
  }

  /** A hook-driven task is running (its agent answers). */
  setRunning(id: string, privateIp?: string): void {
    const t = this.task(id);
    if (t.lastStatus === 'STOPPED') return;
    t.lastStatus = 'RUNNING';
    if (privateIp !== undefined) t.privateIp = privateIp;
  }

  liveTasks(): FakeTask[] {
    return [...this.tasks.values()].filter((t) => t.lastStatus !== 'STOPPED');
  }

  activeDefinitions(): TaskDefinition[] {
    return [...this.definitions.values()].filter((d) => d.status === 'ACTIVE');
  }

  private task(id: string): FakeTask {
    const t = this.tasks.get(id) ?? [...this.tasks.values()].find((x) => x.arn === id);
    if (!t) throw new Error(`fake ECS: no task ${id}`);
    return t;
  }

  // ---- the API ----

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private take(b: Bucket, n: number): boolean {
    const now = this.now();
    b.tokens = Math.min(b.burst, b.tokens + ((now - b.at) / 1000) * b.perSecond);
    b.at = now;
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  private async call<T>(op: FakeEcsOp, f: () => T): Promise<T> {
    this.calls[op] += 1;
    const queued = this.queued.get(op) ?? 0;
    const bucket = op === 'RunTask' ? this.runTaskBucket : this.otherBucket;
    if (queued > 0 || !this.take(bucket, 1)) {
      if (queued > 0) this.queued.set(op, queued - 1);
      this.throttled += 1;
      throw ecsError('ThrottlingException', 'Rate exceeded');
    }
    const err = this.errors.get(op)?.shift();
    if (err) throw err;
    return f();
  }

  private cluster(name: string | undefined): string {
    const c = (name ?? 'default').replace(/^arn:aws:ecs:[^:]+:\d+:cluster\//, '');
    if (!this.clusters.has(c)) throw ecsError('ClusterNotFoundException', 'Cluster not found.');
    return c;
  }

  private register(i: RegisterTaskDefinitionCommandInput): { taskDefinition: TaskDefinition } {
    if (!i.family || !/^[A-Za-z0-9_-]{1,255}$/.test(i.family)) throw ecsError('ClientException', 'Family contains invalid characters or is too long.');
    if (!(i.requiresCompatibilities ?? []).includes('FARGATE')) throw ecsError('ClientException', 'Fargate only in this fake: requiresCompatibilities must include FARGATE.');
    if (i.networkMode !== 'awsvpc') throw ecsError('ClientException', 'Fargate requires task definition to have networkMode awsvpc.');
    const cpu = Number(i.cpu);
    const memory = Number(i.memory);
    if (!i.cpu || !i.memory) throw ecsError('ClientException', 'Fargate requires that \'cpu\' be defined at the task level.');
    if (!fargateSizeValid(cpu, memory)) throw ecsError('ClientException', `No Fargate configuration exists for given values: ${i.cpu} CPU, ${i.memory} memory.`);
    const containers = i.containerDefinitions ?? [];
    if (containers.length === 0 || containers.length > 10) throw ecsError('ClientException', 'Container list cannot be empty or hold more than 10 containers.');
    for (const c of containers) {
      if (!c.name || !c.image) throw ecsError('ClientException', 'Container.name and Container.image should not be null or empty.');
      if (c.privileged) throw ecsError('ClientException', 'Fargate does not support privileged containers.');
    }
    if (!containers.some((c) => c.essential !== false)) throw ecsError('ClientException', 'At least one essential container is required.');
    const revision = (this.revisions.get(i.family) ?? 0) + 1;
    this.revisions.set(i.family, revision);
    const arn = `arn:aws:ecs:${FAKE_ECS_REGION}:${FAKE_ACCOUNT}:task-definition/${i.family}:${revision}`;
    const def: TaskDefinition = { ...i, taskDefinitionArn: arn, revision, status: 'ACTIVE', registeredAt: new Date(this.now()) } as TaskDefinition;
    this.definitions.set(arn, def);
    return { taskDefinition: def };
  }

  private definition(ref: string | undefined): TaskDefinition {
    if (!ref) throw ecsError('ClientException', 'taskDefinition is required.');
    const direct = this.definitions.get(ref) ?? this.definitions.get(`arn:aws:ecs:${FAKE_ECS_REGION}:${FAKE_ACCOUNT}:task-definition/${ref}`);
    if (direct) return direct;
    if (!ref.includes(':')) {
      const latest = [...this.definitions.values()].filter((d) => d.family === ref && d.status === 'ACTIVE').sort((a, b) => (b.revision ?? 0) - (a.revision ?? 0))[0];
      if (latest) return latest;
    }
    throw ecsError('ClientException', 'Unable to describe task definition.');
  }

  private deregister(i: DeregisterTaskDefinitionCommandInput): { taskDefinition: TaskDefinition } {
    const d = this.definition(i.taskDefinition);
    if (!i.taskDefinition?.match(/:\d+$/)) throw ecsError('ClientException', 'A revision is required to deregister a task definition.');
    d.status = 'INACTIVE';
    return { taskDefinition: d };
  }

  private describeDefinition(i: DescribeTaskDefinitionCommandInput): { taskDefinition: TaskDefinition } {
    return { taskDefinition: this.definition(i.taskDefinition) };
  }

  private runTask(i: RunTaskCommandInput): { tasks: Task[]; failures: { arn?: string; reason: string; detail?: string }[] } {
    this.runInputs.push(i);
    const cluster = this.cluster(i.cluster);
    const def = this.definition(i.taskDefinition);
    if (def.status !== 'ACTIVE') throw ecsError('ClientException', 'TaskDefinition is inactive');
    if (i.launchType && i.capacityProviderStrategy?.length) throw ecsError('InvalidParameterException', 'Specifying both a launchType and capacityProviderStrategy is not supported.');
    const count = i.count ?? 1;
    if (count < 1 || count > 10) throw ecsError('InvalidParameterException', 'count must be between 1 and 10.');
    const vpc = i.networkConfiguration?.awsvpcConfiguration;
    if (!vpc?.subnets?.length) throw ecsError('InvalidParameterException', 'Network Configuration must be provided when networkMode \'awsvpc\' is specified.');
    for (const s of vpc.subnets) if (!FAKE_ECS_SUBNETS.includes(s)) throw ecsError('InvalidParameterException', `Error retrieving subnet information for [${s}]: The subnet ID '${s}' does not exist`);
    if (i.startedBy !== undefined && !STARTED_BY.test(i.startedBy)) throw ecsError('InvalidParameterException', 'startedBy may hold up to 128 letters, numbers, hyphens, forward slashes and underscores.');
    const tags = i.tags ?? [];
    if (tags.length > 50) throw ecsError('InvalidParameterException', 'Too many tags (50 at most).');
    for (const t of tags) {
      if (!t.key || t.key.length > 128 || (t.value ?? '').length > 256) throw ecsError('InvalidParameterException', 'Tag keys are 1-128 characters, values up to 256.');
      if (t.key.toLowerCase().startsWith('aws:')) throw ecsError('InvalidParameterException', 'Tag keys may not start with aws:.');
    }
    if (!this.take(this.launchBucket, count)) {
      this.throttled += 1;
      throw ecsError('ThrottlingException', 'Rate exceeded');
    }
    const strategy = i.capacityProviderStrategy?.length ? [...i.capacityProviderStrategy].sort((a, b) => (b.base ?? 0) - (a.base ?? 0) || (b.weight ?? 0) - (a.weight ?? 0)) : [{ capacityProvider: 'FARGATE' }];
    const tasks: Task[] = [];
    const failures: { arn?: string; reason: string; detail?: string }[] = [];
    for (let n = 0; n < count; n++) {
      const provider = strategy.map((s) => s.capacityProvider ?? 'FARGATE').find((p) => !this.noCapacity.has(p));
      if (!provider) {
        failures.push({ reason: SPOT_CAPACITY_REASON });
        continue;
      }
      const subnet = vpc.subnets.find((s) => !this.fullSubnets.has(s));
      if (!subnet) {
        failures.push({ reason: 'RESOURCE:ENI', detail: `no free IP addresses in subnets ${vpc.subnets.join(', ')}` });
        continue;
      }
      this.seq += 1;
      const id = `${this.seq.toString(16).padStart(8, '0')}${'0'.repeat(24)}`;
      const t: FakeTask = {
        arn: `arn:aws:ecs:${FAKE_ECS_REGION}:${FAKE_ACCOUNT}:task/${cluster}/${id}`,
        id,
        cluster,
        definitionArn: def.taskDefinitionArn!,
        lastStatus: 'PROVISIONING',
        desiredStatus: 'RUNNING',
        tags: Object.fromEntries(tags.map((x) => [x.key!, x.value ?? ''])),
        ...(i.startedBy !== undefined ? { startedBy: i.startedBy } : {}),
        subnet,
        privateIp: this.o.privateIp?.(this.seq, subnet) ?? `10.0.${FAKE_ECS_SUBNETS.indexOf(subnet)}.${this.seq}`,
        capacityProvider: provider,
        createdAt: new Date(this.now()),
        containers: (def.containerDefinitions ?? []).map((c) => ({ name: c.name! })),
        input: i,
        stepsLeft: this.stepDescribes,
        driven: this.o.hooks !== undefined,
      };
      this.tasks.set(id, t);
      tasks.push(this.render(t, true));
      this.o.hooks?.onRun(t, def);
    }
    return { tasks, failures };
  }

  private render(t: FakeTask, withTags: boolean): Task {
    return {
      taskArn: t.arn,
      clusterArn: `arn:aws:ecs:${FAKE_ECS_REGION}:${FAKE_ACCOUNT}:cluster/${t.cluster}`,
      taskDefinitionArn: t.definitionArn,
      lastStatus: t.lastStatus,
      desiredStatus: t.desiredStatus,
      capacityProviderName: t.capacityProvider,
      launchType: 'FARGATE',
      createdAt: t.createdAt,
      ...(t.startedBy !== undefined ? { startedBy: t.startedBy } : {}),
      ...(t.stoppedReason !== undefined ? { stoppedReason: t.stoppedReason } : {}),
      ...(t.stopCode !== undefined ? { stopCode: t.stopCode as Task['stopCode'] } : {}),
      attachments: [
        {
          type: 'ElasticNetworkInterface',
          status: t.lastStatus === 'STOPPED' ? 'DELETED' : 'ATTACHED',
          details: [
            { name: 'subnetId', value: t.subnet },
            { name: 'privateIPv4Address', value: t.privateIp },
          ],
        },
      ],
      containers: t.containers.map((c) => ({
        name: c.name,
        lastStatus: t.lastStatus === 'STOPPED' ? 'STOPPED' : t.lastStatus,
        ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
      })),
      ...(withTags ? { tags: Object.entries(t.tags).map(([key, value]) => ({ key, value })) } : {}),
    };
  }

  private step(t: FakeTask): void {
    if (t.driven || t.lastStatus === 'RUNNING' || t.lastStatus === 'STOPPED') return;
    if (t.lastStatus === 'DEACTIVATING') {
      t.lastStatus = 'STOPPED';
      return;
    }
    t.stepsLeft -= 1;
    if (t.stepsLeft > 0) return;
    t.stepsLeft = this.stepDescribes;
    t.lastStatus = t.lastStatus === 'PROVISIONING' ? 'PENDING' : 'RUNNING';
  }

  private describeTasks(i: DescribeTasksCommandInput): { tasks: Task[]; failures: { arn: string; reason: string }[] } {
    const cluster = this.cluster(i.cluster);
    const ids = i.tasks ?? [];
    if (ids.length === 0 || ids.length > 100) throw ecsError('InvalidParameterException', 'Tasks cannot be empty and hold at most 100 entries.');
    const tasks: Task[] = [];
    const failures: { arn: string; reason: string }[] = [];
    for (const ref of ids) {
      const t = this.tasks.get(ref) ?? [...this.tasks.values()].find((x) => x.arn === ref);
      if (!t || t.cluster !== cluster) {
        failures.push({ arn: ref, reason: 'MISSING' });
        continue;
      }
      this.step(t);
      tasks.push(this.render(t, (i.include ?? []).includes('TAGS')));
    }
    return { tasks, failures };
  }

  private listTasks(i: ListTasksCommandInput): { taskArns: string[]; nextToken?: string } {
    const cluster = this.cluster(i.cluster);
    const max = i.maxResults ?? 100;
    if (max < 1 || max > 100) throw ecsError('InvalidParameterException', 'maxResults must be between 1 and 100.');
    const desired = i.desiredStatus ?? 'RUNNING';
    const all = [...this.tasks.values()].filter(
      (t) =>
        t.cluster === cluster &&
        t.desiredStatus === desired &&
        (i.startedBy === undefined || t.startedBy === i.startedBy) &&
        (i.family === undefined || this.definitions.get(t.definitionArn)?.family === i.family),
    );
    const from = i.nextToken ? Number(i.nextToken) : 0;
    const page = all.slice(from, from + max).map((t) => t.arn);
    return { taskArns: page, ...(from + max < all.length ? { nextToken: String(from + max) } : {}) };
  }

  private stopTask(i: StopTaskCommandInput): { task: Task } {
    const cluster = this.cluster(i.cluster);
    const t = [...this.tasks.values()].find((x) => (x.id === i.task || x.arn === i.task) && x.cluster === cluster);
    if (!t) throw ecsError('InvalidParameterException', 'The referenced task was not found.');
    if ((i.reason ?? '').length > 255) throw ecsError('InvalidParameterException', 'reason is at most 255 characters.');
    if (t.desiredStatus !== 'STOPPED') {
      t.desiredStatus = 'STOPPED';
      t.stopCode = 'UserInitiated';
      t.stoppedReason = i.reason ?? 'Task stopped by user';
      t.lastStatus = t.lastStatus === 'PROVISIONING' && !t.driven ? 'STOPPED' : 'DEACTIVATING';
      this.o.hooks?.onStop(t);
    }
    return { task: this.render(t, false) };
  }
}
