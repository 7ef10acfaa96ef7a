// The documented range of every duration, size and count in the config file (README, "Configuration
// reference"). A value outside its range is a ConfigError naming the key path, so `fleetrunner validate`
// catches it instead of the running coordinator. Durations are in milliseconds, sizes in bytes.
//
// Why these bounds (the README says the same in fewer words):
// - No duration the coordinator waits out itself goes past one day, far below the longest one Node timer
//   waits (2^31-1 ms, about 24.8 days; core/clock.ts splits longer computed waits, such as a month-long
//   job timeout, into several timers). gitlab.runner.maximumTimeout is only sent to GitLab.
// - checkInterval ≥ 1s: gitlab-runner's check_interval is whole seconds; 0 made the loop ask GitLab for
//   jobs ~800 times a second.
// - shutdownTimeout ≥ 1s: 0 reads as "no limit" in many tools (and as "the default 30 s" in
//   gitlab-runner), but here it would fail every running job the moment SIGTERM arrives.
// - bootTimeout ≥ 10s: nothing boots and answers SSH faster; less only turns every machine into a failure.
// - gitlab.runner.maximumTimeout: GitLab refuses less than 10 minutes ("needs to be at least 10 minutes")
//   at registration, after start; a project's timeout is at most a month, so more has no effect.
// - cache.s3.urlExpiry ≤ 7d: SigV4 presigned URLs live at most 7 days. ≥ 5m: the URLs are signed when the
//   job starts and the upload happens at its end.
// - lease.duration ≥ 3s: a renewal is a network round trip, and the holder stops maxClockSkew before
//   expiry; ≤ 15m: a crashed holder's lease keeps its successor waiting for this long. lease.renewInterval
//   and lease.maxClockSkew are also at most a third of lease.duration (compile.ts): two renewals can fail
//   before the holder stands down, and a successor waits out the skew.
// - EBS limits are those of RunInstances' EbsBlockDevice (see the @aws-sdk/client-ec2 model docs).
// - ec2.watchdog.idleTimeout ≥ 5m: the coordinator touches a held machine's heartbeat every minute, idle
//   or busy; less than a few missed beats would power off machines a live coordinator holds
//   through a network blip. ≤ 24h: past that, maxLifetime is the bound anyway.
// - ec2.watchdog.maxLifetime 1h–30d: the machine powers off then even mid-job, so it must outlast the
//   longest job plus the pool's reuse of a machine; 30 days is GitLab's longest job timeout.
// - requestConcurrency 1–100, and at most concurrent: each request in flight holds a slot, so more could
//   never be sent; gitlab-runner's request_concurrency is the same idea (default 1). Past ~100 parallel long
//   polls the answer is GitLab's queue, not the runner.
// - ec2.launchBatch 1–100: RunInstances takes up to a few hundred per call, but the instances of one call
//   share a host key, and 100 already launches a 300-job burst in a second or two.
// - ec2.spotCircuitBreaker: a window of 1m–24h, an on-demand period of 1m–7d, 1–100 interruptions.

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export interface Range {
  min: number;
  max: number;
  /** Said after the range in an error, e.g. what 0 means or why the bound is there. */
  note?: string;
}

export const DURATION_LIMITS = {
  checkInterval: { min: SECOND, max: HOUR, note: 'GitLab is asked for jobs at most once per checkInterval' },
  shutdownTimeout: { min: SECOND, max: DAY, note: 'how long running jobs may take to finish after SIGTERM; 0 is not "no limit"' },
  handoffTimeout: { min: SECOND, max: 10 * MINUTE, note: 'must end before the platform kills the task (ECS stopTimeout is at most 120s)' },
  maximumTimeout: { min: 10 * MINUTE, max: 30 * DAY, note: 'GitLab refuses less than 10 minutes' },
  bootTimeout: { min: 10 * SECOND, max: HOUR },
  afterScriptTimeout: { min: SECOND, max: DAY },
  waitForServicesTimeout: { min: 0, max: HOUR, note: '0s skips waiting for services' },
  urlExpiry: { min: 5 * MINUTE, max: 7 * DAY, note: 'presigned S3 URLs live at most 7 days, and must outlast the job' },
  capacityCooldown: { min: 0, max: DAY, note: '0s never benches a pool' },
  idleTime: { min: 0, max: DAY, note: '0s removes an idle machine the target no longer needs at once' },
  finalUpdateMaxBackoff: { min: SECOND, max: HOUR, note: 'final states are retried for as long as GitLab is away; this caps the wait between tries' },
  leaseDuration: { min: 3 * SECOND, max: 15 * MINUTE, note: 'a crashed holder keeps its successor waiting this long' },
  leaseRenewInterval: { min: SECOND, max: 5 * MINUTE, note: 'and at most a third of lease.duration' },
  leaseMaxClockSkew: { min: 0, max: 5 * MINUTE, note: 'and at most a third of lease.duration; 0s only where all holders share one clock' },
  watchdogIdleTimeout: { min: 5 * MINUTE, max: DAY, note: 'the coordinator touches the heartbeat every minute; less would power off machines it still holds' },
  watchdogMaxLifetime: { min: HOUR, max: 30 * DAY, note: 'the machine powers off then even mid-job' },
  spotBreakerWindow: { min: MINUTE, max: DAY },
  jobRoleSessionDuration: { min: 15 * MINUTE, max: 12 * HOUR, note: 'STS sessions last 15 minutes to 12 hours, and at most the role\'s MaxSessionDuration' },
  spotBreakerOnDemandFor: { min: MINUTE, max: 7 * DAY },
} as const satisfies Record<string, Range>;

export const SIZE_LIMITS = {
  outputLimit: { min: 1024, max: 1024 ** 3 },
} as const satisfies Record<string, Range>;

export const COUNT_LIMITS = {
  concurrent: { min: 1, max: 10_000 },
  /** Also at most `concurrent` (compile.ts): more requests than free slots could never be sent. */
  requestConcurrency: { min: 1, max: 100 },
  maxMachines: { min: 1, max: 10_000 },
  /** Also at most the executor's maxMachines (compile.ts). */
  idleCount: { min: 0, max: 10_000 },
  scaleFactorLimit: { min: 0, max: 10_000 },
  maxUseCount: { min: 1, max: 100_000 },
  maxGrowthRate: { min: 1, max: 10_000 },
  port: { min: 1, max: 65_535 },
  spotBreakerInterruptions: { min: 1, max: 100 },
  launchBatch: { min: 1, max: 100 },
} as const satisfies Record<string, Range>;

/** Not whole numbers. */
export const NUMBER_LIMITS = {
  scaleFactor: { min: 0, max: 100 },
  /** Docker's --cpus takes hundredths of a CPU; no EC2 instance type has more than 1024 vCPUs. */
  cpus: { min: 0.01, max: 1024 },
} as const satisfies Record<string, Range>;

export type EbsVolumeType = 'gp3' | 'gp2' | 'io1' | 'io2';

/** RunInstances' EbsBlockDevice: VolumeSize, Iops and Throughput by volume type. The root volume is at least 8 GiB (AL2023's snapshot). */
export const EBS_LIMITS: Record<EbsVolumeType, { sizeGb: Range; iops?: Range & { required: boolean }; throughput?: Range }> = {
  gp2: { sizeGb: { min: 8, max: 16_384 } },
  gp3: { sizeGb: { min: 8, max: 65_536 }, iops: { min: 3_000, max: 80_000, required: false }, throughput: { min: 125, max: 2_000 } },
  io1: { sizeGb: { min: 8, max: 16_384 }, iops: { min: 100, max: 64_000, required: true } },
  io2: { sizeGb: { min: 8, max: 65_536 }, iops: { min: 100, max: 256_000, required: true } },
};

/** EC2 allows 50 tags per resource; fleetrunner adds Name and its three ownership tags. */
export const EC2_USER_TAGS_MAX = 46;

/** "1h30m" for 5_400_000, in the config's own units; days only from 2 days on ("24h", "7d"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let left = ms;
  let out = '';
  const units = [['d', DAY], ['h', HOUR], ['m', MINUTE], ['s', SECOND], ['ms', 1]] as const;
  for (const [unit, size] of ms >= 2 * DAY ? units : units.slice(1)) {
    const n = Math.floor(left / size);
    if (n > 0) {
      out += `${n}${unit}`;
      left -= n * size;
    }
  }
  return out;
}

/** "4MiB" for 4_194_304, "1KiB" for 1024; bytes with "B" otherwise. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
