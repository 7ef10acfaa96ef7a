// YAML text → validated, defaulted, unit-normalised, frozen config. Every error names the key path.

import { CronTime } from 'cron';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_POOL, type PoolConfig, type PoolSchedule } from '../core/pool-config.js';
import { decideTaskSize } from '../core/fargate-task-size.js';
import type { Ec2ProviderConfig, FargateProviderConfig, S3CacheConfig } from '../core/provider-config.js';

export type { Ec2ProviderConfig, FargateProviderConfig, S3CacheConfig } from '../core/provider-config.js';
import { interpolateEnv } from './interpolate.js';
import { DURATION_LIMITS, EBS_LIMITS, EC2_USER_TAGS_MAX, formatDuration, formatSize, NUMBER_LIMITS, SIZE_LIMITS, type Range } from './limits.js';
import { parseListen } from './listen.js';
import { configSchema, type RawConfig } from './schema.js';
import { isBareNumber, parseDuration, parseSize } from './units.js';

export interface RoutingRules {
  services?: readonly string[];
  images?: readonly string[];
  variables?: Readonly<Record<string, string>>;
}

export interface LocalProviderConfig {
  root?: string;
  network: 'loopback' | 'namespace';
  /** Base name of the per-machine job users (coordinator running as root). */
  jobUser?: string;
}

export type PullPolicy = 'always' | 'if-not-present' | 'never';

export interface DockerStyleConfig {
  defaultImage: string;
  pullPolicy: PullPolicy;
  allowedPullPolicies: readonly PullPolicy[];
  volumes: readonly string[];
  cpus?: string;
  memory?: string;
  extraHosts: readonly string[];
  hostDockerSocket: boolean;
  servicesPrivileged: boolean;
  waitForServicesTimeoutMs: number;
}


export interface EcrConfig {
  pullRegistries: readonly string[];
  pushRegistries: readonly string[];
}


export interface ExecutorConfig {
  name: string;
  provider: 'local' | 'ec2' | 'fargate';
  style: 'shell' | 'docker';
  privileged: boolean;
  maxMachines: number;
  environment: Readonly<Record<string, string>>;
  bootTimeoutMs: number;
  afterScriptTimeoutMs: number;
  /** STS credentials per job from this role (`jobRole`). */
  jobRole?: { roleArn: string; sessionDurationMs: number; region?: string; externalId?: string; stsRegion?: string; credentials: 'auto' | 'variables' | 'file' };
  match?: RoutingRules;
  /** Set when provider is local. */
  local?: LocalProviderConfig;
  /** Set when provider is ec2. */
  ec2?: Ec2ProviderConfig;
  /** Set when provider is fargate. */
  fargate?: FargateProviderConfig;
  /** Set when style is docker. */
  docker?: DockerStyleConfig;
  cache?: { s3?: S3CacheConfig };
  ecr?: EcrConfig;
  /** Always set: DEFAULT_POOL (nothing idle, a fresh machine per job) when the file has no `pool`. */
  pool: PoolConfig;
}

/** One active coordinator per fleet: exactly one of `dynamodb` and `file` is set. */
export interface LeaseConfig {
  dynamodb?: { table: string; region?: string };
  file?: { path?: string };
  durationMs: number;
  renewIntervalMs: number;
  maxClockSkewMs: number;
}

export interface FleetConfig {
  gitlab: {
    url: string;
    machineUrl: string;
    token?: string;
    registrationToken?: string;
    runner: { description: string; tags: readonly string[]; runUntagged: boolean; locked: boolean; maximumTimeoutS?: number };
    unregisterOnStop: boolean;
    /** Cap on the wait between two final-state delivery tries while GitLab is unavailable. */
    finalUpdateMaxBackoffMs: number;
    rotatedToken?: { ssmParameter: string; region?: string; kmsKeyId?: string };
  };
  concurrent: number;
  /** Job requests in flight at once (each holds a slot while it waits); at most `concurrent`. */
  requestConcurrency: number;
  checkIntervalMs: number;
  shutdownTimeoutMs: number;
  /** Absent: decided at start (handoff on ECS, drain elsewhere). */
  onShutdown?: 'drain' | 'handoff';
  handoffTimeoutMs: number;
  outputLimitBytes: number;
  fleet: string;
  stateDir?: string;
  log: { level: 'debug' | 'info' | 'warn' | 'error'; format: 'json' | 'pretty' };
  /**
   * `listen` as the metrics server reads it ("host:port", ":port" for every interface; an IPv6 host
   * without its brackets, e.g. "::1:9090", the port being after the last colon), and the same split.
   */
  metrics: { listen?: string; host?: string; port?: number };
  /** Absent: no lease (the coordinator starts at once). */
  lease?: LeaseConfig;
  executors: readonly ExecutorConfig[];
  /** The GitLab runners this coordinator serves, each with its own request loop over the executors it owns:
   *  the deployment's own (gitlab.token, named `default`) first when it keeps any executor, then `runners:`. */
  runners: readonly RunnerConfig[];
}

export interface RunnerConfig {
  name: string;
  /** Absent: the deployment's own runner (gitlab.token or gitlab.registrationToken, gitlab.runner). */
  token?: string;
  /** The banner's "on <description>". */
  description: string;
  /** Executor names, in routing order. */
  executors: readonly string[];
  requestConcurrency: number;
}

/** The name of the runner of gitlab.token in logs, metrics and `runners` (reserved in `runners:`). */
export const DEFAULT_RUNNER = 'default';

function pathOf(issuePath: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of issuePath) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `is required (expected ${issue.expected})`;
  return issue.message;
}

const withNote = (r: Range) => (r.note ? ` (${r.note})` : '');

/** A duration in ms within `range`. A bare number is refused: it is not clear whether it means s or ms. */
function duration(path: string, v: string | number, range: Range): number {
  if (isBareNumber(v)) {
    const n = String(v).trim();
    throw new ConfigError(path, `${JSON.stringify(v)} has no unit: write ${n}s for seconds (units: ms, s, m, h, d)`);
  }
  const ms = parseDuration(v);
  if (ms === undefined) throw new ConfigError(path, `expected a duration such as 30s, 5m or 1h30m, got ${JSON.stringify(v)}`);
  if (ms < range.min || ms > range.max) {
    throw new ConfigError(path, `expected a duration from ${formatDuration(range.min)} to ${formatDuration(range.max)}, got ${JSON.stringify(v)}${withNote(range)}`);
  }
  return ms;
}

/** A size in bytes within `range`; a bare number is refused like a bare duration (gitlab-runner's output_limit is in KB). */
function size(path: string, v: string | number, range: Range): number {
  if (isBareNumber(v)) {
    const n = String(v).trim();
    throw new ConfigError(path, `${JSON.stringify(v)} has no unit: write ${n}B for bytes or ${n}KiB for kibibytes (units: B, KiB, MiB, GiB, KB, MB, GB)`);
  }
  const bytes = parseSize(v);
  if (bytes === undefined) throw new ConfigError(path, `expected a size such as 4MiB or 512KiB, got ${JSON.stringify(v)}`);
  if (bytes < range.min || bytes > range.max) {
    throw new ConfigError(path, `expected a size from ${formatSize(range.min)} to ${formatSize(range.max)}, got ${JSON.stringify(v)}${withNote(range)}`);
  }
  return bytes;
}

type RawExecutor = RawConfig['executors'][number];
type RawPool = NonNullable<RawExecutor['pool']>;

/** Only the classic 5 fields: the cron package also takes a leading seconds field, which a period has no use for. */
const CRON_FIELDS = 'minute hour day-of-month month day-of-week';

function checkPeriod(path: string, expr: string): void {
  const fields = expr.trim() === '' ? 0 : expr.trim().split(/\s+/).length;
  if (fields !== 5) throw new ConfigError(path, `expected a cron expression of 5 fields (${CRON_FIELDS}), got ${fields} in ${JSON.stringify(expr)}`);
  try {
    // Parsing with UTC keeps validation independent of the host's zone; the schedule's zone is checked apart.
    new CronTime(expr, 'UTC');
  } catch (e) {
    throw new ConfigError(path, `${JSON.stringify(expr)} is not a valid cron expression (${CRON_FIELDS}): ${(e as Error).message}`);
  }
}

function checkTimezone(path: string, tz: string): void {
  // Intl is what the policy converts times with, so "valid" means valid to Intl. Offsets such as +01:00
  // are refused although newer Node versions accept them: they are not IANA zones and follow no DST.
  let ok = !/^[+-]/.test(tz);
  if (ok) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ConfigError(path, `expected an IANA time zone such as UTC or Europe/Berlin, got ${JSON.stringify(tz)}`);
}

/** A pool never plans more machines than the executor may have; a number above it is a typo, not a wish. */
function checkAtMostMax(path: string, value: number | undefined, maxMachines: number): void {
  if (value !== undefined && value > maxMachines) throw new ConfigError(path, `${value} is more than maxMachines (${maxMachines})`);
}

function compilePool(p: RawPool, at: string, maxMachines: number): PoolConfig {
  checkAtMostMax(`${at}.idleCount`, p.idleCount, maxMachines);
  checkAtMostMax(`${at}.scaleFactorLimit`, p.scaleFactorLimit, maxMachines);
  const schedules = p.schedules.map((s, j): PoolSchedule => {
    const sat = `${at}.schedules[${j}]`;
    s.periods.forEach((expr, k) => checkPeriod(`${sat}.periods[${k}]`, expr));
    checkTimezone(`${sat}.timezone`, s.timezone);
    checkAtMostMax(`${sat}.idleCount`, s.idleCount, maxMachines);
    checkAtMostMax(`${sat}.scaleFactorLimit`, s.scaleFactorLimit, maxMachines);
    return {
      periods: s.periods,
      timezone: s.timezone,
      ...(s.idleCount !== undefined && { idleCount: s.idleCount }),
      ...(s.idleTime !== undefined && { idleTimeMs: duration(`${sat}.idleTime`, s.idleTime, DURATION_LIMITS.idleTime) }),
      ...(s.scaleFactor !== undefined && { scaleFactor: s.scaleFactor }),
      ...(s.scaleFactorLimit !== undefined && { scaleFactorLimit: s.scaleFactorLimit }),
    };
  });
  return {
    idleCount: p.idleCount,
    idleTimeMs: duration(`${at}.idleTime`, p.idleTime, DURATION_LIMITS.idleTime),
    scaleFactor: p.scaleFactor,
    ...(p.scaleFactorLimit !== undefined && { scaleFactorLimit: p.scaleFactorLimit }),
    maxUseCount: p.maxUseCount,
    ...(p.maxGrowthRate !== undefined && { maxGrowthRate: p.maxGrowthRate }),
    schedules,
  };
}

/** Docker's --cpus, as a number or a decimal string. */
function checkCpus(path: string, v: string | number): string {
  const n = typeof v === 'number' ? v : /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
  const r = NUMBER_LIMITS.cpus;
  if (!(n >= r.min && n <= r.max)) throw new ConfigError(path, `expected a number of CPUs from ${r.min} to ${r.max}, such as 2 or 1.5, got ${JSON.stringify(v)}`);
  return String(v).trim();
}

type RawEc2 = NonNullable<RawExecutor['ec2']>;

/** Size, IOPS and throughput against RunInstances' limits for the volume type, so a launch cannot fail on them. */
function checkRootVolume(at: string, v: RawEc2['rootVolume']): void {
  const limits = EBS_LIMITS[v.type];
  const outside = (key: string, value: number, r: Range, unit: string) => {
    if (value < r.min || value > r.max) throw new ConfigError(`${at}.${key}`, `expected ${r.min} to ${r.max} ${unit} for volume type ${v.type}, got ${value}`);
  };
  outside('sizeGb', v.sizeGb, limits.sizeGb, 'GiB');
  if (v.iops !== undefined) {
    if (!limits.iops) throw new ConfigError(`${at}.iops`, `applies only to volume types gp3, io1 and io2 (${v.type} IOPS follow the size)`);
    outside('iops', v.iops, limits.iops, 'IOPS');
  } else if (limits.iops?.required) {
    throw new ConfigError(`${at}.iops`, `is required for volume type ${v.type} (${limits.iops.min} to ${limits.iops.max})`);
  }
  if (v.throughput !== undefined) {
    if (!limits.throughput) throw new ConfigError(`${at}.throughput`, 'applies only to volume type gp3');
    outside('throughput', v.throughput, limits.throughput, 'MiB/s');
  }
}

function checkTags(at: string, tags: Readonly<Record<string, string>>): void {
  const keys = Object.keys(tags);
  if (keys.length > EC2_USER_TAGS_MAX) {
    throw new ConfigError(at, `expected at most ${EC2_USER_TAGS_MAX} tags, got ${keys.length} (EC2 allows 50 per resource; fleetrunner adds Name and three ownership tags)`);
  }
  for (const k of keys) {
    if (k.length === 0 || k.length > 128) throw new ConfigError(`${at}.${k}`, 'expected a tag key of 1 to 128 characters');
    if (/^aws:/i.test(k)) throw new ConfigError(`${at}.${k}`, 'tag keys starting with aws: are reserved by AWS');
    if (tags[k]!.length > 256) throw new ConfigError(`${at}.${k}`, `expected a tag value of at most 256 characters, got ${tags[k]!.length}`);
  }
}

type RawFargate = NonNullable<RawExecutor['fargate']>;

/** A task per job, from the job's image: shell style (the agent runs the stages in the job's container), no
 *  privileged containers (Fargate has none), no idle pool and no reuse (a task's image is one job's). */
function checkFargateExecutor(e: RawExecutor, at: string): void {
  if (!e.fargate) throw new ConfigError(`${at}.fargate`, 'is required for provider: fargate (cluster, subnets, helperImage, …)');
  if (e.style !== 'shell') throw new ConfigError(`${at}.style`, 'provider: fargate runs the job in its own image as the task\'s container: use style: shell (the default)');
  if (e.privileged) throw new ConfigError(`${at}.privileged`, 'Fargate runs no privileged containers: route privileged jobs to an ec2 executor');
  if (e.pool && (e.pool.idleCount > 0 || e.pool.maxUseCount > 1 || e.pool.scaleFactor > 0 || e.pool.schedules.length > 0)) {
    throw new ConfigError(`${at}.pool`, 'provider: fargate starts one task per job from the job\'s image: no idle pool (idleCount, scaleFactor, schedules) and maxUseCount 1');
  }
}

/** `jobRole` (the executor's) is the task role on Fargate: the job gets its credentials from the container
 *  credentials endpoint, with no STS call per job. */
function compileFargate(f: RawFargate, at: string, bootTimeoutMs: number, jobRole: string | undefined): FargateProviderConfig {
  const units = (key: 'default' | 'min' | 'max') => {
    const u = f.cpu[key] * 1024;
    if (!Number.isInteger(u)) throw new ConfigError(`${at}.cpu.${key}`, `expected vCPUs that are a whole number of CPU units (×1024), such as 0.25, 0.5, 1, 2, got ${f.cpu[key]}`);
    return u;
  };
  const cpu = { default: units('default'), min: units('min'), max: units('max') };
  for (const [key, r] of [['cpu', cpu], ['memory', f.memory]] as const) {
    if (!(r.min <= r.default && r.default <= r.max)) throw new ConfigError(`${at}.${key}`, `expected min ≤ default ≤ max, got ${r.min}, ${r.default}, ${r.max}`);
  }
  const memoryMiB = { default: f.memory.default, min: f.memory.min, max: f.memory.max };
  const size = decideTaskSize({ cpuUnits: cpu.default, memoryMiB: memoryMiB.default }, { cpu, memoryMiB });
  if (!size.ok) throw new ConfigError(`${at}.memory.default`, size.reason);
  if (f.ephemeralStorageGb < 20 || f.ephemeralStorageGb > 200) throw new ConfigError(`${at}.ephemeralStorageGb`, `expected 20 to 200 GiB, got ${f.ephemeralStorageGb}`);
  checkTags(`${at}.tags`, f.tags);
  return {
    ...(f.region !== undefined && { region: f.region }),
    cluster: f.cluster,
    subnets: f.subnets,
    securityGroups: f.securityGroups,
    assignPublicIp: f.assignPublicIp,
    capacityProviderStrategy: [...new Set(f.capacityProviderStrategy)],
    platformVersion: f.platformVersion,
    ephemeralStorageGb: f.ephemeralStorageGb,
    image: f.image,
    helperImage: f.helperImage,
    cpu,
    memoryMiB,
    ...(f.executionRoleArn !== undefined && { executionRoleArn: f.executionRoleArn }),
    ...(jobRole !== undefined && { jobRole }),
    agentPort: f.agentPort,
    tags: f.tags,
    definitionIdleMs: duration(`${at}.definitionIdleTime`, f.definitionIdleTime, DURATION_LIMITS.capacityCooldown),
    capacityCooldownMs: duration(`${at}.capacityCooldown`, f.capacityCooldown, DURATION_LIMITS.capacityCooldown),
    bootTimeoutMs,
  };
}

function compileExecutor(e: RawExecutor, i: number): ExecutorConfig {
  const at = `executors[${i}]`;
  if (e.provider === 'ec2' && !e.ec2) throw new ConfigError(`${at}.ec2`, 'is required for provider: ec2 (subnets, instanceTypes, …)');
  if (e.provider !== 'ec2' && e.ec2) throw new ConfigError(`${at}.ec2`, `applies only to provider: ec2 (this executor uses provider: ${e.provider})`);
  if (e.provider === 'fargate') checkFargateExecutor(e, at);
  if (e.provider !== 'fargate' && e.fargate) throw new ConfigError(`${at}.fargate`, `applies only to provider: fargate (this executor uses provider: ${e.provider})`);
  if (e.provider !== 'local' && e.local) throw new ConfigError(`${at}.local`, `applies only to provider: local (this executor uses provider: ${e.provider})`);
  if (e.style !== 'docker' && e.docker) throw new ConfigError(`${at}.docker`, 'applies only to style: docker');
  if (e.style !== 'docker' && e.privileged) throw new ConfigError(`${at}.privileged`, 'applies only to style: docker (containers run privileged; a shell job already runs as the machine user)');
  if (e.provider === 'ec2' && e.style === 'shell' && e.ecr?.pushRegistries.length) {
    throw new ConfigError(`${at}.ecr.pushRegistries`, 'needs style: docker (the login is handed to the job\'s Docker client)');
  }
  if (e.ec2?.connectVia === 'public' && !e.ec2.associatePublicIp) {
    throw new ConfigError(`${at}.ec2.connectVia`, 'public needs ec2.associatePublicIp: true (instances get no public IP otherwise)');
  }
  const d = e.docker ?? dockerDefaults();
  const s3 = e.cache?.s3;
  const ec2 = e.ec2;
  if (ec2) {
    checkRootVolume(`${at}.ec2.rootVolume`, ec2.rootVolume);
    checkTags(`${at}.ec2.tags`, ec2.tags);
  }
  return {
    name: e.name,
    provider: e.provider,
    style: e.style,
    privileged: e.privileged,
    maxMachines: e.maxMachines,
    environment: e.environment,
    bootTimeoutMs: duration(`${at}.bootTimeout`, e.bootTimeout, DURATION_LIMITS.bootTimeout),
    afterScriptTimeoutMs: duration(`${at}.afterScriptTimeout`, e.afterScriptTimeout, DURATION_LIMITS.afterScriptTimeout),
    ...(e.match !== undefined && { match: e.match }),
    ...(e.jobRole && {
      jobRole: {
        roleArn: e.jobRole.roleArn,
        sessionDurationMs: duration(`${at}.jobRole.sessionDuration`, e.jobRole.sessionDuration, DURATION_LIMITS.jobRoleSessionDuration),
        ...(e.jobRole.region !== undefined && { region: e.jobRole.region }),
        ...(e.jobRole.externalId !== undefined && { externalId: e.jobRole.externalId }),
        ...(e.jobRole.stsRegion !== undefined && { stsRegion: e.jobRole.stsRegion }),
        credentials: e.jobRole.credentials,
      },
    }),
    pool: e.pool ? compilePool(e.pool, `${at}.pool`, e.maxMachines) : DEFAULT_POOL,
    ...(e.provider === 'local' && {
      local: {
        network: e.local?.network ?? 'loopback',
        ...(e.local?.root !== undefined && { root: e.local.root }),
        ...(e.local?.jobUser !== undefined && { jobUser: e.local.jobUser }),
      },
    }),
    ...(e.style === 'docker' && {
      docker: {
        defaultImage: d.defaultImage,
        pullPolicy: d.pullPolicy,
        allowedPullPolicies: d.allowedPullPolicies,
        volumes: d.volumes,
        ...(d.cpus !== undefined && { cpus: checkCpus(`${at}.docker.cpus`, d.cpus) }),
        ...(d.memory !== undefined && { memory: d.memory }),
        extraHosts: d.extraHosts,
        hostDockerSocket: d.hostDockerSocket,
        servicesPrivileged: d.servicesPrivileged ?? e.privileged,
        waitForServicesTimeoutMs: duration(`${at}.docker.waitForServicesTimeout`, d.waitForServicesTimeout, DURATION_LIMITS.waitForServicesTimeout),
      },
    }),
    ...(s3 && {
      cache: {
        s3: {
          bucket: s3.bucket,
          prefix: s3.prefix,
          ...(s3.region !== undefined && { region: s3.region }),
          ...(s3.endpoint !== undefined && { endpoint: s3.endpoint }),
          forcePathStyle: s3.forcePathStyle,
          urlExpiryMs: duration(`${at}.cache.s3.urlExpiry`, s3.urlExpiry, DURATION_LIMITS.urlExpiry),
        },
      },
    }),
    ...(e.ecr && { ecr: { pullRegistries: e.ecr.pullRegistries, pushRegistries: e.ecr.pushRegistries } }),
    ...(e.fargate && { fargate: compileFargate(e.fargate, `${at}.fargate`, duration(`${at}.bootTimeout`, e.bootTimeout, DURATION_LIMITS.bootTimeout), e.jobRole?.roleArn) }),
    ...(ec2 && {
      ec2: {
        ...(ec2.region !== undefined && { region: ec2.region }),
        ...(ec2.ami !== undefined && { ami: ec2.ami }),
        amiParameter: ec2.amiParameter,
        instanceTypes: ec2.instanceTypes,
        subnets: ec2.subnets,
        securityGroups: ec2.securityGroups,
        ...(ec2.iamInstanceProfile !== undefined && { iamInstanceProfile: ec2.iamInstanceProfile }),
        spot: ec2.spot,
        onDemandFallback: ec2.onDemandFallback,
        rootVolume: ec2.rootVolume,
        associatePublicIp: ec2.associatePublicIp,
        connectVia: ec2.connectVia,
        sshUser: ec2.sshUser,
        tags: ec2.tags,
        bakedAmi: ec2.bakedAmi,
        ...(ec2.userDataTemplate !== undefined && { userDataTemplate: ec2.userDataTemplate }),
        capacityCooldownMs: duration(`${at}.ec2.capacityCooldown`, ec2.capacityCooldown, DURATION_LIMITS.capacityCooldown),
        launchBatch: ec2.launchBatch,
        watchdog: {
          idleTimeoutMs: duration(`${at}.ec2.watchdog.idleTimeout`, ec2.watchdog.idleTimeout, DURATION_LIMITS.watchdogIdleTimeout),
          maxLifetimeMs: duration(`${at}.ec2.watchdog.maxLifetime`, ec2.watchdog.maxLifetime, DURATION_LIMITS.watchdogMaxLifetime),
        },
        spotCircuitBreaker: {
          interruptions: ec2.spotCircuitBreaker.interruptions,
          windowMs: duration(`${at}.ec2.spotCircuitBreaker.window`, ec2.spotCircuitBreaker.window, DURATION_LIMITS.spotBreakerWindow),
          onDemandForMs: duration(`${at}.ec2.spotCircuitBreaker.onDemandFor`, ec2.spotCircuitBreaker.onDemandFor, DURATION_LIMITS.spotBreakerOnDemandFor),
        },
      },
    }),
  };
}

function dockerDefaults(): NonNullable<RawExecutor['docker']> {
  return {
    defaultImage: 'alpine:latest',
    pullPolicy: 'always',
    allowedPullPolicies: ['always', 'if-not-present', 'never'],
    volumes: [],
    extraHosts: [],
    hostDockerSocket: false,
    waitForServicesTimeout: '30s',
  };
}

function compileLease(l: NonNullable<RawConfig['lease']>): LeaseConfig {
  if (!l.dynamodb === !l.file) {
    throw new ConfigError('lease', 'set exactly one of lease.dynamodb (coordinators that are replaced, such as ECS tasks) and lease.file (coordinators on one host)');
  }
  const durationMs = duration('lease.duration', l.duration, DURATION_LIMITS.leaseDuration);
  const renewIntervalMs = duration('lease.renewInterval', l.renewInterval, DURATION_LIMITS.leaseRenewInterval);
  const maxClockSkewMs = duration('lease.maxClockSkew', l.maxClockSkew, DURATION_LIMITS.leaseMaxClockSkew);
  const third = formatDuration(Math.floor(durationMs / 3));
  if (renewIntervalMs * 3 > durationMs) {
    throw new ConfigError('lease.renewInterval', `expected at most a third of lease.duration (${third}), got ${JSON.stringify(l.renewInterval)}: two renewals must be able to fail before the lease runs out`);
  }
  if (maxClockSkewMs * 3 > durationMs) {
    throw new ConfigError('lease.maxClockSkew', `expected at most a third of lease.duration (${third}), got ${JSON.stringify(l.maxClockSkew)}`);
  }
  return {
    ...(l.dynamodb && { dynamodb: { table: l.dynamodb.table, ...(l.dynamodb.region !== undefined && { region: l.dynamodb.region }) } }),
    ...(l.file && { file: { ...(l.file.path !== undefined && { path: l.file.path }) } }),
    durationMs,
    renewIntervalMs,
    maxClockSkewMs,
  };
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export function compileConfig(raw: unknown, env: Record<string, string | undefined> = {}): FleetConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('', 'the config file must be a YAML mapping');
  const interpolated = interpolateEnv(raw, env);
  const parsed = configSchema.safeParse(interpolated);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(pathOf(issue.path), describeIssue(issue));
  }
  const c: RawConfig = parsed.data;
  if (!c.gitlab.token === !c.gitlab.registrationToken) {
    throw new ConfigError('gitlab.token', 'set exactly one of gitlab.token (runner authentication token, glrt-…) and gitlab.registrationToken');
  }
  const names = new Set<string>();
  c.executors.forEach((e, i) => {
    if (names.has(e.name)) throw new ConfigError(`executors[${i}].name`, `duplicate executor name "${e.name}"`);
    names.add(e.name);
  });
  if (c.requestConcurrency > c.concurrent) {
    throw new ConfigError('requestConcurrency', `expected at most concurrent (${c.concurrent}), got ${c.requestConcurrency}: each job request holds a slot while it waits`);
  }
  const runners = compileRunners(c);
  const maxTimeout = c.gitlab.runner.maximumTimeout;
  const listen = c.metrics.listen;
  const metrics = listen === undefined ? undefined : parseListen(listen);
  if (typeof metrics === 'string') throw new ConfigError('metrics.listen', metrics);
  const config: FleetConfig = {
    gitlab: {
      url: trimSlash(c.gitlab.url),
      machineUrl: trimSlash(c.gitlab.machineUrl ?? c.gitlab.url),
      ...(c.gitlab.token !== undefined && { token: c.gitlab.token }),
      ...(c.gitlab.registrationToken !== undefined && { registrationToken: c.gitlab.registrationToken }),
      runner: {
        description: c.gitlab.runner.description,
        tags: c.gitlab.runner.tags,
        runUntagged: c.gitlab.runner.runUntagged,
        locked: c.gitlab.runner.locked,
        ...(maxTimeout !== undefined && { maximumTimeoutS: Math.round(duration('gitlab.runner.maximumTimeout', maxTimeout, DURATION_LIMITS.maximumTimeout) / 1000) }),
      },
      unregisterOnStop: c.gitlab.unregisterOnStop,
      finalUpdateMaxBackoffMs: duration('gitlab.finalUpdateMaxBackoff', c.gitlab.finalUpdateMaxBackoff, DURATION_LIMITS.finalUpdateMaxBackoff),
      ...(c.gitlab.rotatedToken && { rotatedToken: c.gitlab.rotatedToken }),
    },
    concurrent: c.concurrent,
    requestConcurrency: c.requestConcurrency,
    checkIntervalMs: duration('checkInterval', c.checkInterval, DURATION_LIMITS.checkInterval),
    shutdownTimeoutMs: duration('shutdownTimeout', c.shutdownTimeout, DURATION_LIMITS.shutdownTimeout),
    ...(c.onShutdown !== undefined && { onShutdown: c.onShutdown }),
    handoffTimeoutMs: duration('handoffTimeout', c.handoffTimeout, DURATION_LIMITS.handoffTimeout),
    outputLimitBytes: size('outputLimit', c.outputLimit, SIZE_LIMITS.outputLimit),
    fleet: c.fleet,
    ...(c.stateDir !== undefined && { stateDir: c.stateDir }),
    log: c.log,
    metrics: metrics ? { listen: metrics.listen, ...(metrics.host !== undefined && { host: metrics.host }), port: metrics.port } : {},
    ...(c.lease && { lease: compileLease(c.lease) }),
    executors: c.executors.map((e, i) => compileExecutor(e, i)),
    runners,
  };
  return deepFreeze(config);
}

/** `runners:` checked against the executors; the deployment's runner keeps every executor no runner names. */
function compileRunners(c: RawConfig): RunnerConfig[] {
  const owner = new Map<string, string>();
  const names = new Set<string>([DEFAULT_RUNNER]);
  const tokens = new Map<string, string>([[c.gitlab.token ?? c.gitlab.registrationToken ?? '', 'gitlab.token']]);
  const extra = c.runners.map((r, i): RunnerConfig => {
    const at = `runners[${i}]`;
    if (names.has(r.name)) throw new ConfigError(`${at}.name`, r.name === DEFAULT_RUNNER ? `"${DEFAULT_RUNNER}" is the runner of gitlab.token: choose another name` : `duplicate runner name "${r.name}"`);
    names.add(r.name);
    const same = tokens.get(r.token);
    if (same) throw new ConfigError(`${at}.token`, `the same token as ${same}: one token is one runner in GitLab, so its jobs would go to either loop`);
    tokens.set(r.token, `${at}.token`);
    r.executors.forEach((e, j) => {
      if (!c.executors.some((x) => x.name === e)) throw new ConfigError(`${at}.executors[${j}]`, `no executor named "${e}" (executors: ${c.executors.map((x) => x.name).join(', ')})`);
      const taken = owner.get(e);
      if (taken) throw new ConfigError(`${at}.executors[${j}]`, `executor "${e}" already belongs to runner "${taken}": an executor serves one runner`);
      owner.set(e, r.name);
    });
    return { name: r.name, token: r.token, description: r.description ?? r.name, executors: [...r.executors], requestConcurrency: r.requestConcurrency ?? c.requestConcurrency };
  });
  const rest = c.executors.map((e) => e.name).filter((e) => !owner.has(e));
  const all = [...(rest.length > 0 ? [{ name: DEFAULT_RUNNER, description: c.gitlab.runner.description, executors: rest, requestConcurrency: c.requestConcurrency }] : []), ...extra];
  const requests = all.reduce((n, r) => n + r.requestConcurrency, 0);
  if (requests > c.concurrent) {
    throw new ConfigError('runners', `the runners send ${requests} job requests at once (${all.map((r) => `${r.name}: ${r.requestConcurrency}`).join(', ')}), more than concurrent (${c.concurrent}): each request holds a slot while it waits`);
  }
  return all;
}

export function parseConfigText(text: string, env: Record<string, string | undefined> = {}): FleetConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    throw new ConfigError('', `the file is not valid YAML${where}: ${(e as Error).message.split('\n')[0]}`);
  }
  return compileConfig(raw, env);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
