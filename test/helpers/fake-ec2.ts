// A stateful fake of the EC2 and SSM APIs at the SDK boundary (aws-sdk-client-mock on real client objects):
// an in-memory model of instances that honours tag, state and instance-id filters with pagination, moves
// instances from pending to running, terminates idempotently (and fails the whole call for unknown ids, as
// EC2 does), and can be told to answer capacity errors per subnet / instance type / market, throttling N
// times, or any other error. RunInstances launches MinCount..MaxCount instances (fewer than MaxCount when a
// capacity fault has only some `available`), and with `runInstancesRate` enforces its request bucket
// (AWS publishes 5, refilled at 2 per second) with RequestLimitExceeded. Strict where EC2 is strict, so a request EC2 would refuse fails here too.
// Tags follow EC2's limits (50 per resource, keys up to 128 and values up to 256 characters, no `aws:`
// prefix); CreateTags has its own request bucket (100, refilled at 10 per second, on the `now` clock) and
// answers RequestLimitExceeded beyond it.
// DryRun (RunInstances, DescribeAvailabilityZones, CreateTags) answers DryRunOperation once the request would pass, and
// an IAM action the test `deny`s answers UnauthorizedOperation, dry or not, as EC2 does.
// With `hooks`, a machine of the test's own (test/vm: a QEMU VM booted from the instance's user data) plays
// each instance: the hook is told of every launch and terminate, and moves the instance's state itself.

import {
  CreateTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  EC2ServiceException,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type CreateTagsCommandInput,
  type DescribeAvailabilityZonesCommandInput,
  type DescribeImagesCommandInput,
  type DescribeInstancesCommandInput,
  type DescribeSecurityGroupsCommandInput,
  type Filter,
  type Instance,
  type InstanceStateName,
  type RunInstancesCommandInput,
  type TerminateInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient, SSMServiceException, type GetParameterCommandInput } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';

export const FAKE_SUBNETS: Readonly<Record<string, string>> = {
  'subnet-0aaa1111': 'eu-west-1a',
  'subnet-0bbb2222': 'eu-west-1b',
  'subnet-0ccc3333': 'eu-west-1c',
};
export const FAKE_AMI_PARAMETER = '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';
export const FAKE_AMI = 'ami-0123456789abcdef0';
export const FAKE_SECURITY_GROUPS: readonly string[] = ['sg-0ccc3333', 'sg-0ddd4444'];

export type FakeMarket = 'spot' | 'on-demand';
export type FakeOp =
  | 'RunInstances'
  | 'DescribeInstances'
  | 'TerminateInstances'
  | 'GetParameter'
  | 'DescribeAvailabilityZones'
  | 'DescribeImages'
  | 'DescribeSecurityGroups'
  | 'CreateTags';

export interface FakeInstance {
  id: string;
  state: InstanceStateName;
  tags: Record<string, string>;
  subnet: string;
  az: string;
  instanceType: string;
  market: FakeMarket;
  privateIp: string;
  publicIp?: string;
  launchTime: Date;
  /** Decoded user data. */
  userData: string;
  /** The RunInstances input that launched it. */
  input: RunInstancesCommandInput;
  /** Describes that still show it pending (then it runs). */
  pendingDescribes: number;
  stateReason?: { Code: string; Message: string };
  /** Its state is moved by `hooks` (setState), not by describe calls. */
  driven?: boolean;
}

/** What the test's own machine does when EC2 is asked to launch or terminate an instance. */
export interface FakeEc2Hooks {
  /** RunInstances launched `inst` (not for dry runs, refused calls or client-token repeats). It stays `pending`
   *  until the hook calls `setState(id, 'running')` (or `terminated`, with a reason, if it cannot start). */
  onRun(inst: FakeInstance): void;
  /** TerminateInstances reached `inst`, once: it is `shutting-down` until the hook calls `setState(id, 'terminated')`. */
  onTerminate(inst: FakeInstance): void;
}

export interface CapacityFault {
  subnet?: string;
  instanceType?: string;
  market?: FakeMarket;
  /** Default InsufficientInstanceCapacity. */
  code?: string;
  /** Instances still launchable in the pools it matches before it answers the error (a call with MinCount 1
   *  then launches fewer than MaxCount, as EC2 does). Default 0. */
  available?: number;
}

interface QueuedError {
  code: string;
  message: string;
  status: number;
}

export interface FakeEc2Options {
  /** Describes an instance stays pending before it runs. Default 1; Infinity: until the test says so. */
  pendingDescribes?: number;
  /** Private IP for the n-th instance (from 1). Default 10.0.<subnet index>.<n>. */
  privateIp?: (n: number, subnet: string) => string;
  /** Launch time source. Default Date.now. */
  now?: () => number;
  /** Instances played by the test's own machines (see FakeEc2Hooks). */
  hooks?: FakeEc2Hooks;
  /** CreateTags request bucket. Default AWS's: 100, refilled at 10 per second. */
  createTagsRate?: { burst: number; perSecond: number };
  /** RunInstances request bucket, e.g. AWS's published 5, refilled at 2 per second: beyond it the call
   *  answers RequestLimitExceeded. Default: no limit. */
  runInstancesRate?: { burst: number; perSecond: number };
}

export function awsError(code: string, message: string, status = 400): EC2ServiceException {
  return new EC2ServiceException({ name: code, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

const DEFAULT_STATUS: Record<string, number> = {
  RequestLimitExceeded: 503,
  InsufficientInstanceCapacity: 500,
  InsufficientCapacity: 500,
  InternalError: 500,
  Unavailable: 503,
};

export class FakeEc2 {
  readonly ec2 = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
  readonly ssm = new SSMClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
  readonly instances = new Map<string, FakeInstance>();
  /** Every RunInstances input, including the ones that failed. */
  readonly runInputs: RunInstancesCommandInput[] = [];
  readonly describeInputs: DescribeInstancesCommandInput[] = [];
  readonly terminateInputs: string[][] = [];
  /** Every CreateTags input, including refused and throttled ones. */
  readonly createTagsInputs: CreateTagsCommandInput[] = [];
  /** CreateTags calls refused for the request rate. */
  createTagsThrottled = 0;
  readonly calls: Record<FakeOp, number> = {
    RunInstances: 0,
    DescribeInstances: 0,
    TerminateInstances: 0,
    GetParameter: 0,
    DescribeAvailabilityZones: 0,
    DescribeImages: 0,
    DescribeSecurityGroups: 0,
    CreateTags: 0,
  };
  readonly parameters = new Map<string, string>([[FAKE_AMI_PARAMETER, FAKE_AMI]]);
  /** Security groups that exist. */
  readonly securityGroups = new Set<string>(FAKE_SECURITY_GROUPS);
  /** IAM actions the caller is not allowed (`deny`). */
  readonly denied = new Set<string>();
  /** ec2:CreateTags allowed only as part of a launch (a policy with `Condition: ec2:CreateAction = RunInstances`):
   *  CreateTags calls answer UnauthorizedOperation, tags on RunInstances are fine. */
  createTagsOnlyAtLaunch = false;
  /** RunInstances calls with DryRun (they are in runInputs too, and launch nothing). */
  dryRuns = 0;
  pendingDescribes: number;
  private capacityFaults: CapacityFault[] = [];
  private readonly queued: Record<FakeOp, QueuedError[]> = {
    RunInstances: [],
    DescribeInstances: [],
    TerminateInstances: [],
    GetParameter: [],
    DescribeAvailabilityZones: [],
    DescribeImages: [],
    DescribeSecurityGroups: [],
    CreateTags: [],
  };
  private seq = 0;
  private createTagsBucket: { tokens: number; at: number } | undefined;
  private runInstancesBucket: { tokens: number; at: number } | undefined;
  /** RunInstances calls refused for the request rate (`runInstancesRate`). */
  runInstancesThrottled = 0;
  /** Client token → the instances its call launched. */
  private readonly tokens = new Map<string, string[]>();

  constructor(private readonly o: FakeEc2Options = {}) {
    this.pendingDescribes = o.pendingDescribes ?? 1;
    const ec2 = mockClient(this.ec2);
    ec2.on(RunInstancesCommand).callsFake((i: RunInstancesCommandInput) => this.runInstances(i));
    ec2.on(DescribeInstancesCommand).callsFake((i: DescribeInstancesCommandInput) => this.describeInstances(i));
    ec2.on(TerminateInstancesCommand).callsFake((i: TerminateInstancesCommandInput) => this.terminateInstances(i));
    ec2.on(DescribeAvailabilityZonesCommand).callsFake((i: DescribeAvailabilityZonesCommandInput) => this.describeAvailabilityZones(i));
    ec2.on(DescribeImagesCommand).callsFake((i: DescribeImagesCommandInput) => this.describeImages(i));
    ec2.on(DescribeSecurityGroupsCommand).callsFake((i: DescribeSecurityGroupsCommandInput) => this.describeSecurityGroups(i));
    ec2.on(CreateTagsCommand).callsFake((i: CreateTagsCommandInput) => this.createTags(i));
    mockClient(this.ssm)
      .on(GetParameterCommand)
      .callsFake((i: GetParameterCommandInput) => this.getParameter(i));
  }

  // ---- what the test tells the fake ----

  /** Answers a capacity error for every launch matching `f` until cleared. */
  failCapacity(f: CapacityFault): void {
    this.capacityFaults.push(f);
  }

  clearCapacityFaults(): void {
    this.capacityFaults = [];
  }

  /** The caller's role lacks `action` (e.g. `ec2:RunInstances`, `iam:PassRole`, `ec2:CreateTags`): UnauthorizedOperation. */
  deny(action: string): void {
    this.denied.add(action);
  }

  /** The next `times` calls of `op` fail with `code` (default RequestLimitExceeded). */
  failNext(op: FakeOp, times = 1, code = 'RequestLimitExceeded', message = `fake ${code}`, status = DEFAULT_STATUS[code] ?? 400): void {
    for (let i = 0; i < times; i++) this.queued[op].push({ code, message, status });
  }

  setState(id: string, state: InstanceStateName, reason?: { Code: string; Message: string }): void {
    const inst = this.instances.get(id);
    if (!inst) throw new Error(`fake EC2: no instance ${id}`);
    inst.state = state;
    if (reason) inst.stateReason = reason;
  }

  /** An instance launched by someone else (another fleet, executor or tool). */
  addInstance(p: { tags: Record<string, string>; state?: InstanceStateName; subnet?: string; instanceType?: string }): FakeInstance {
    const subnet = p.subnet ?? Object.keys(FAKE_SUBNETS)[0]!;
    const inst = this.newInstance({ subnet, instanceType: p.instanceType ?? 'm6i.large', market: 'on-demand', tags: p.tags, userData: '', input: {} as RunInstancesCommandInput });
    inst.state = p.state ?? 'running';
    return inst;
  }

  live(): FakeInstance[] {
    return [...this.instances.values()].filter((i) => i.state !== 'terminated' && i.state !== 'shutting-down');
  }

  // ---- the API ----

  private takeQueued(op: FakeOp): void {
    this.calls[op]++;
    const q = this.queued[op].shift();
    if (q) throw awsError(q.code, q.message, q.status);
  }

  /** EC2 evaluates IAM before anything else, for dry runs too. */
  private authorize(action: string): void {
    if (!this.denied.has(action)) return;
    const blob = Buffer.from(`fake encoded authorization failure for ${action}`).toString('base64');
    throw awsError(
      'UnauthorizedOperation',
      `You are not authorized to perform this operation. User: arn:aws:sts::123456789012:assumed-role/fleetrunner-fake/session is not authorized to perform: ${action} because no identity-based policy allows the ${action} action. Encoded authorization failure message: ${blob}`,
      403,
    );
  }

  private dryRunDone(dryRun: boolean | undefined): void {
    if (dryRun) throw awsError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
  }

  private runInstances(i: RunInstancesCommandInput) {
    this.runInputs.push(i);
    if (i.DryRun) this.dryRuns++;
    this.takeQueued('RunInstances');
    this.takeRunInstancesToken();
    this.authorize('ec2:RunInstances');
    if (i.TagSpecifications?.length) this.authorize('ec2:CreateTags');
    if (i.IamInstanceProfile) this.authorize('iam:PassRole');
    const min = i.MinCount ?? 0;
    const max = i.MaxCount ?? 0;
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min) throw awsError('InvalidParameterValue', `MinCount ${min} and MaxCount ${max}: expected 1 ≤ MinCount ≤ MaxCount`);
    if (!i.ImageId || ![...this.parameters.values()].includes(i.ImageId)) throw awsError('InvalidAMIID.NotFound', `The image id '[${i.ImageId}]' does not exist`);
    const nic = i.NetworkInterfaces?.[0];
    if (nic && (i.SubnetId || i.SecurityGroupIds)) {
      throw awsError('InvalidParameterCombination', 'Network interfaces and an instance-level subnet ID or security groups may not be specified on the same request');
    }
    const subnet = nic?.SubnetId ?? i.SubnetId;
    if (!subnet || !(subnet in FAKE_SUBNETS)) throw awsError('InvalidSubnetID.NotFound', `The subnet ID '${subnet}' does not exist`);
    const userData = Buffer.from(i.UserData ?? '', 'base64').toString('utf8');
    if (Buffer.byteLength(userData) > 16 * 1024) throw awsError('InvalidParameterValue', 'User data is limited to 16384 bytes');
    const groups = nic?.Groups ?? i.SecurityGroupIds ?? [];
    const missingGroup = groups.find((g) => !this.securityGroups.has(g));
    if (missingGroup) throw awsError('InvalidGroup.NotFound', `The security group '${missingGroup}' does not exist`);
    this.dryRunDone(i.DryRun);
    const market: FakeMarket = i.InstanceMarketOptions?.MarketType === 'spot' ? 'spot' : 'on-demand';
    const instanceType = String(i.InstanceType);
    if (i.ClientToken && this.tokens.has(i.ClientToken)) return this.reservation(this.tokens.get(i.ClientToken)!.map((id) => this.instances.get(id)!));
    const fault = this.capacityFaults.find(
      (f) => (!f.subnet || f.subnet === subnet) && (!f.instanceType || f.instanceType === instanceType) && (!f.market || f.market === market),
    );
    const launchable = fault ? Math.min(max, fault.available ?? 0) : max;
    if (fault && launchable < min) {
      const code = fault.code ?? 'InsufficientInstanceCapacity';
      throw awsError(code, `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${FAKE_SUBNETS[subnet]}).`, DEFAULT_STATUS[code] ?? 400);
    }
    if (fault) fault.available = (fault.available ?? 0) - launchable;
    for (const spec of i.TagSpecifications ?? []) checkTags(spec.Tags ?? [], 0);
    const tags: Record<string, string> = {};
    for (const t of i.TagSpecifications?.find((s) => s.ResourceType === 'instance')?.Tags ?? []) tags[t.Key!] = t.Value!;
    const launched: FakeInstance[] = [];
    for (let n = 0; n < launchable; n++) {
      const inst = this.newInstance({ subnet, instanceType, market, tags: { ...tags }, userData, input: i });
      if (nic?.AssociatePublicIpAddress) inst.publicIp = `203.0.113.${this.seq}`;
      if (this.o.hooks) {
        inst.driven = true;
        this.o.hooks.onRun(inst);
      }
      launched.push(inst);
    }
    if (i.ClientToken) this.tokens.set(i.ClientToken, launched.map((x) => x.id));
    return this.reservation(launched);
  }

  private newInstance(p: Pick<FakeInstance, 'subnet' | 'instanceType' | 'market' | 'tags' | 'userData' | 'input'>): FakeInstance {
    const n = ++this.seq;
    const subnetIndex = Object.keys(FAKE_SUBNETS).indexOf(p.subnet);
    const inst: FakeInstance = {
      ...p,
      id: `i-${n.toString(16).padStart(17, '0')}`,
      state: 'pending',
      az: FAKE_SUBNETS[p.subnet] ?? 'eu-west-1a',
      privateIp: this.o.privateIp?.(n, p.subnet) ?? `10.0.${subnetIndex + 1}.${n}`,
      launchTime: new Date(this.o.now?.() ?? Date.now()),
      pendingDescribes: this.pendingDescribes,
    };
    this.instances.set(inst.id, inst);
    return inst;
  }

  private reservation(insts: FakeInstance[]) {
    return { ReservationId: `r-${insts[0]!.id.slice(2)}`, Instances: insts.map((x) => this.toApi(x)) };
  }

  private toApi(i: FakeInstance): Instance {
    return {
      InstanceId: i.id,
      InstanceType: i.instanceType as Instance['InstanceType'],
      State: { Name: i.state, Code: STATE_CODES[i.state] },
      SubnetId: i.subnet,
      Placement: { AvailabilityZone: i.az },
      ...(i.state !== 'terminated' && { PrivateIpAddress: i.privateIp }),
      ...(i.publicIp && i.state === 'running' && { PublicIpAddress: i.publicIp }),
      LaunchTime: i.launchTime,
      Tags: Object.entries(i.tags).map(([Key, Value]) => ({ Key, Value })),
      ...(i.market === 'spot' && { InstanceLifecycle: 'spot' }),
      ...(i.stateReason && { StateReason: i.stateReason }),
    };
  }

  private describeInstances(input: DescribeInstancesCommandInput) {
    this.describeInputs.push(input);
    this.takeQueued('DescribeInstances');
    if (input.MaxResults !== undefined && input.InstanceIds?.length) throw awsError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
    if (input.MaxResults !== undefined && (input.MaxResults < 5 || input.MaxResults > 1000)) throw awsError('InvalidParameterValue', 'MaxResults must be between 5 and 1000');
    for (const id of input.InstanceIds ?? []) if (!this.instances.has(id)) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    let matched = [...this.instances.values()].filter((i) => (!input.InstanceIds || input.InstanceIds.includes(i.id)) && (input.Filters ?? []).every((f) => matches(i, f)));
    // Time passes with every look: pending instances start, shutting-down ones finish.
    for (const i of matched) {
      if (i.driven) continue;
      if (i.state === 'pending' && --i.pendingDescribes < 0) i.state = 'running';
      else if (i.state === 'shutting-down') i.state = 'terminated';
    }
    matched = matched.filter((i) => (input.Filters ?? []).every((f) => matches(i, f)));
    const start = input.NextToken ? Number(input.NextToken) : 0;
    const size = input.MaxResults ?? matched.length;
    const page = matched.slice(start, start + size);
    const next = start + size < matched.length ? String(start + size) : undefined;
    return { Reservations: page.map((i) => ({ ReservationId: `r-${i.id.slice(2)}`, Instances: [this.toApi(i)] })), ...(next && { NextToken: next }) };
  }

  private terminateInstances(input: TerminateInstancesCommandInput) {
    const ids = input.InstanceIds ?? [];
    this.terminateInputs.push([...ids]);
    this.takeQueued('TerminateInstances');
    if (ids.length > 1000) throw awsError('InvalidParameterValue', 'at most 1000 instance ids per call');
    const malformed = ids.filter((id) => !/^i-[0-9a-f]{8,17}$/.test(id));
    if (malformed.length) throw awsError('InvalidInstanceID.Malformed', `Invalid id: "${malformed[0]}"`);
    const unknown = ids.filter((id) => !this.instances.has(id));
    if (unknown.length === 1) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${unknown[0]}' does not exist`);
    if (unknown.length > 1) throw awsError('InvalidInstanceID.NotFound', `The instance IDs '${unknown.join(', ')}' do not exist`);
    const TerminatingInstances = ids.map((id) => {
      const inst = this.instances.get(id)!;
      const previous = inst.state;
      if (inst.state !== 'terminated') inst.state = 'shutting-down';
      if (inst.driven && previous !== 'shutting-down' && previous !== 'terminated') this.o.hooks!.onTerminate(inst);
      return { InstanceId: id, PreviousState: { Name: previous }, CurrentState: { Name: inst.state } };
    });
    return { TerminatingInstances };
  }

  private createTags(i: CreateTagsCommandInput) {
    this.createTagsInputs.push(i);
    this.takeQueued('CreateTags');
    this.takeCreateTagsToken();
    this.authorize('ec2:CreateTags');
    if (this.createTagsOnlyAtLaunch) {
      this.denied.add('ec2:CreateTags (existing)');
      try {
        this.authorize('ec2:CreateTags (existing)');
      } finally {
        this.denied.delete('ec2:CreateTags (existing)');
      }
    }
    const ids = i.Resources ?? [];
    if (ids.length === 0) throw awsError('MissingParameter', 'The request must contain the parameter resourceIdSet');
    const malformed = ids.filter((id) => !/^i-[0-9a-f]{8,17}$/.test(id));
    if (malformed.length) throw awsError('InvalidID', `The ID '${malformed[0]}' is not valid`);
    const unknown = ids.filter((id) => !this.instances.has(id));
    if (unknown.length) throw awsError('InvalidInstanceID.NotFound', `The instance ID '${unknown.join(', ')}' does not exist`);
    for (const id of ids) checkTags(i.Tags ?? [], Object.keys(this.instances.get(id)!.tags).filter((k) => !(i.Tags ?? []).some((t) => t.Key === k)).length);
    this.dryRunDone(i.DryRun);
    for (const id of ids) for (const t of i.Tags ?? []) this.instances.get(id)!.tags[t.Key!] = t.Value ?? '';
    return {};
  }

  /** RunInstances' request bucket (when `runInstancesRate` is set), refilled on the `now` clock. */
  private takeRunInstancesToken(): void {
    const rate = this.o.runInstancesRate;
    if (!rate) return;
    const now = this.o.now?.() ?? Date.now();
    const b = (this.runInstancesBucket ??= { tokens: rate.burst, at: now });
    b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) * rate.perSecond) / 1000);
    b.at = now;
    if (b.tokens < 1) {
      this.runInstancesThrottled++;
      throw awsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
    }
    b.tokens -= 1;
  }

  /** CreateTags' request bucket, refilled on the `now` clock. */
  private takeCreateTagsToken(): void {
    const rate = this.o.createTagsRate ?? { burst: 100, perSecond: 10 };
    const now = this.o.now?.() ?? Date.now();
    const b = (this.createTagsBucket ??= { tokens: rate.burst, at: now });
    b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) * rate.perSecond) / 1000);
    b.at = now;
    if (b.tokens < 1) {
      this.createTagsThrottled++;
      throw awsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
    }
    b.tokens -= 1;
  }

  private describeAvailabilityZones(i: DescribeAvailabilityZonesCommandInput) {
    this.takeQueued('DescribeAvailabilityZones');
    this.authorize('ec2:DescribeAvailabilityZones');
    this.dryRunDone(i.DryRun);
    const zones = [...new Set(Object.values(FAKE_SUBNETS))];
    return { AvailabilityZones: zones.map((ZoneName) => ({ ZoneName, RegionName: 'eu-west-1', State: 'available' as const })) };
  }

  private describeImages(i: DescribeImagesCommandInput) {
    this.takeQueued('DescribeImages');
    this.authorize('ec2:DescribeImages');
    this.dryRunDone(i.DryRun);
    const known = new Set(this.parameters.values());
    for (const id of i.ImageIds ?? []) {
      if (!/^ami-[0-9a-f]{8,17}$/.test(id)) throw awsError('InvalidAMIID.Malformed', `Invalid id: "${id}"`);
      if (!known.has(id)) throw awsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    }
    return { Images: (i.ImageIds ?? [...known]).map((ImageId) => ({ ImageId, State: 'available' as const })) };
  }

  private describeSecurityGroups(i: DescribeSecurityGroupsCommandInput) {
    this.takeQueued('DescribeSecurityGroups');
    this.authorize('ec2:DescribeSecurityGroups');
    this.dryRunDone(i.DryRun);
    const missing = (i.GroupIds ?? []).filter((g) => !this.securityGroups.has(g));
    if (missing.length) throw awsError('InvalidGroup.NotFound', `The security group${missing.length > 1 ? 's' : ''} '${missing.join(', ')}' does not exist`);
    return { SecurityGroups: (i.GroupIds ?? [...this.securityGroups]).map((GroupId) => ({ GroupId, VpcId: 'vpc-0fake' })) };
  }

  private getParameter(i: GetParameterCommandInput) {
    this.calls.GetParameter++;
    const q = this.queued.GetParameter.shift();
    if (q) throw new SSMServiceException({ name: q.code, $fault: q.status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: q.status }, message: q.message });
    const value = i.Name ? this.parameters.get(i.Name) : undefined;
    if (value === undefined) throw new SSMServiceException({ name: 'ParameterNotFound', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: '' });
    return { Parameter: { Name: i.Name, Type: 'String', Value: value, Version: 1 } };
  }
}

const STATE_CODES: Record<InstanceStateName, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

/** EC2's tag rules; `others` is how many tags the resource keeps besides these. */
function checkTags(tags: readonly { Key?: string; Value?: string }[], others: number): void {
  if (tags.length + others > 50) throw awsError('TagLimitExceeded', 'The maximum number of tags for a resource is 50');
  for (const t of tags) {
    if (!t.Key || t.Key.length > 128) throw awsError('InvalidParameterValue', `Tag key '${t.Key ?? ''}' must be 1 to 128 characters`);
    if (t.Key.toLowerCase().startsWith('aws:')) throw awsError('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved`);
    if ((t.Value ?? '').length > 256) throw awsError('InvalidParameterValue', `Tag value for key '${t.Key}' exceeds 256 characters`);
  }
}

/** One EC2 filter: tag:KEY, tag-key, instance-state-name, instance-id, subnet-id, instance-type. */
function matches(i: FakeInstance, f: Filter): boolean {
  const values = f.Values ?? [];
  const name = f.Name ?? '';
  if (name.startsWith('tag:')) {
    const v = i.tags[name.slice(4)];
    return v !== undefined && values.includes(v);
  }
  switch (name) {
    case 'tag-key':
      return values.some((k) => k in i.tags);
    case 'instance-state-name':
      return values.includes(i.state);
    case 'instance-id':
      return values.includes(i.id);
    case 'subnet-id':
      return values.includes(i.subnet);
    case 'instance-type':
      return values.includes(i.instanceType);
    default:
      throw awsError('InvalidParameterValue', `The filter '${name}' is invalid`);
  }
}
