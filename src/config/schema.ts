// The config file's shape. Keys may be added over time; existing keys never change meaning (docs/architecture.md).
// Durations/sizes accept human units and are normalised, and range-checked, by compile.ts; they take
// numbers here only so that compile.ts can say "write 30s" for a bare 30. Counts are checked here, against
// the ranges in limits.ts.

import { z } from 'zod';

import { COUNT_LIMITS, NUMBER_LIMITS, type Range } from './limits.js';

const duration = z.union([z.string(), z.number()]).describe('a duration such as 30s, 5m or 1h30m');
const size = z.union([z.string(), z.number()]).describe('a size such as 4MiB or 512KiB');

function shown(v: unknown): string {
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** The error of a value outside `r`; undefined for a missing key, so it keeps zod's "is required". */
function rangeError(kind: string, r: Range) {
  return (iss: { input?: unknown }) => (iss.input === undefined ? undefined : `expected ${kind} from ${r.min} to ${r.max}, got ${shown(iss.input)}`);
}

/** A whole number within `r`. */
function count(r: Range) {
  const error = rangeError('a whole number', r);
  return z.number({ error }).int({ error }).min(r.min, { error }).max(r.max, { error });
}

/** Any finite number within `r`. */
function number(r: Range) {
  const error = rangeError('a number', r);
  return z.number({ error }).min(r.min, { error }).max(r.max, { error });
}

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'expected lowercase letters, digits and dashes (at most 40), starting with a letter or digit');

const localProvider = z.strictObject({
  /** Directory under which each local machine gets its own folder. */
  root: z.string().optional(),
  /** loopback: sshd on 127.0.0.1; namespace: each machine in its own network namespace. */
  network: z.enum(['loopback', 'namespace']).default('loopback'),
  /** Coordinator running as root: base name of the per-machine job users (`<jobUser>-<10 hex>`). */
  jobUser: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,19}$/, 'expected a user name prefix: lowercase letters, digits, _ and - (at most 20), starting with a letter or _')
    .optional(),
});

const routing = z.strictObject({
  /** The job runs here if it uses a service whose image starts with one of these (e.g. docker:dind). */
  services: z.array(z.string()).optional(),
  /** Image name prefixes. */
  images: z.array(z.string()).optional(),
  /** Variables that must be set to the given values. */
  variables: z.record(z.string(), z.string()).optional(),
});

const pullPolicy = z.enum(['always', 'if-not-present', 'never']);

const dockerStyle = z.strictObject({
  /** Image for jobs that name none. */
  defaultImage: z.string().default('alpine:latest'),
  /** Used when the job gives no pull_policy. */
  pullPolicy: pullPolicy.default('always'),
  /** Pull policies a job may ask for (gitlab-runner's allowed_pull_policies). */
  allowedPullPolicies: z.array(pullPolicy).min(1).default(['always', 'if-not-present', 'never']),
  /** Extra volumes for build and service containers: "/certs/client", "/cache", "host:container[:ro]". */
  volumes: z.array(z.string()).default([]),
  /** A number of CPUs (Docker's --cpus); range-checked in compile.ts. */
  cpus: z.union([z.number(), z.string()]).optional(),
  memory: z.string().regex(/^\d+(\.\d+)?[bkmg]?$/i, 'expected a Docker memory size such as 4g or 512m').optional(),
  extraHosts: z.array(z.string().regex(/^[^:\s]+:[^\s]+$/, 'expected host:address')).default([]),
  /** Mount the machine's Docker socket into the build container instead of using docker:dind. */
  hostDockerSocket: z.boolean().default(false),
  /** Privileged services (default: the executor's `privileged`). */
  servicesPrivileged: z.boolean().optional(),
  /** How long to wait for a service's exposed ports before going on (gitlab-runner: 30 s). */
  waitForServicesTimeout: duration.default('30s'),
});

const s3Cache = z.strictObject({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name'),
  prefix: z.string().default(''),
  region: z.string().optional(),
  /** An S3-compatible endpoint (MinIO, LocalStack); AWS_ENDPOINT_URL_S3 works too. */
  endpoint: z.url().optional(),
  forcePathStyle: z.boolean().default(false),
  /** Lifetime of the presigned URLs handed to a machine. */
  urlExpiry: duration.default('1h'),
});

const ecrRegistry = z.string().regex(/^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/, 'expected an ECR registry such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com');

const ec2Provider = z.strictObject({
  region: z.string().optional(),
  /** An AMI id; otherwise the SSM parameter below is resolved at start. */
  ami: z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'expected an AMI id such as ami-0123456789abcdef0').optional(),
  amiParameter: z.string().default('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64'),
  instanceTypes: z.array(z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'expected an instance type such as c6i.xlarge')).min(1),
  subnets: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'expected a subnet id such as subnet-0123abcd')).min(1),
  securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'expected a security group id such as sg-0123abcd')).default([]),
  iamInstanceProfile: z.string().optional(),
  spot: z.boolean().default(false),
  /** With spot: fall back to on-demand when no spot capacity is left in any pool. */
  onDemandFallback: z.boolean().default(true),
  rootVolume: z
    .strictObject({
      /** sizeGb, iops and throughput: whole numbers here, their ranges by volume type in compile.ts (EBS_LIMITS). */
      sizeGb: z.number().int().default(30),
      type: z.enum(['gp3', 'gp2', 'io1', 'io2']).default('gp3'),
      encrypted: z.boolean().default(true),
      kmsKeyId: z.string().optional(),
      iops: z.number().int().optional(),
      throughput: z.number().int().optional(),
      deviceName: z.string().default('/dev/xvda'),
    })
    .default({ sizeGb: 30, type: 'gp3', encrypted: true, deviceName: '/dev/xvda' }),
  associatePublicIp: z.boolean().default(false),
  /** Connect by private IP (default, the coordinator runs in the VPC) or public IP. */
  connectVia: z.enum(['private', 'public']).default('private'),
  sshUser: z.string().default('ec2-user'),
  /** Extra tags on instances and volumes (never secrets). */
  tags: z.record(z.string(), z.string()).default({}),
  /** The AMI already has Docker, git, curl, zip and the ECR credential helper: skip installing them. */
  bakedAmi: z.boolean().default(false),
  /** A cloud-init template of your own instead of templates/ec2-user-data.yaml. */
  userDataTemplate: z.string().optional(),
  /** How long a subnet/instance-type pool that reported no capacity stays out of rotation. */
  capacityCooldown: duration.default('5m'),
  /** Most instances one RunInstances call launches in a burst (they share one SSH host key); 1: never batch. */
  launchBatch: count(COUNT_LIMITS.launchBatch).default(50),
  /** The instance's own agent (templates/ec2-user-data.yaml): powers the instance off when no coordinator
   *  has held it and no job has run for idleTimeout, and at maxLifetime whatever happens. */
  watchdog: z
    .strictObject({
      idleTimeout: duration.default('30m'),
      maxLifetime: duration.default('24h'),
    })
    .default({ idleTimeout: '30m', maxLifetime: '24h' }),
  /** After `interruptions` spot interruptions within `window`, new machines are on-demand for `onDemandFor`. */
  spotCircuitBreaker: z
    .strictObject({
      interruptions: count(COUNT_LIMITS.spotBreakerInterruptions).default(2),
      window: duration.default('15m'),
      onDemandFor: duration.default('30m'),
    })
    .default({ interruptions: 2, window: '15m', onDemandFor: '30m' }),
});

const fargateSize = <T extends number>(d: { default: T; min: T; max: T }) =>
  z.strictObject({ default: z.number().positive().default(d.default), min: z.number().positive().default(d.min), max: z.number().positive().default(d.max) }).default(d);

/** provider: fargate — one ECS task per job, the job's image as written (docs/architecture.md). */
const fargateProvider = z.strictObject({
  region: z.string().optional(),
  /** The ECS cluster the tasks run in (name or ARN). */
  cluster: z.string().min(1),
  subnets: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'expected a subnet id such as subnet-0123abcd')).min(1),
  securityGroups: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'expected a security group id such as sg-0123abcd')).default([]),
  assignPublicIp: z.boolean().default(false),
  /** Capacity providers in fallback order: the next one when this one has no capacity. */
  capacityProviderStrategy: z.array(z.enum(['FARGATE_SPOT', 'FARGATE'])).min(1).default(['FARGATE_SPOT', 'FARGATE']),
  platformVersion: z.string().default('LATEST'),
  /** Task ephemeral storage, GiB (20 to 200; 20 is Fargate's default). */
  ephemeralStorageGb: z.number().int().default(20),
  /** The job image when a job names none. */
  image: z.string().min(1).default('alpine:latest'),
  /** The image that delivers the agent into each task (built from docker/Dockerfile: `fleetrunner helper`). */
  helperImage: z.string().min(1),
  /** vCPUs per task: the default, and the bounds a job's FLEETRUNNER_CPU must stay within. */
  cpu: fargateSize({ default: 1, min: 0.25, max: 4 }),
  /** MiB per task: the default, and the bounds for FLEETRUNNER_MEMORY. */
  memory: fargateSize({ default: 2048, min: 512, max: 30720 }),
  executionRoleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'expected an IAM role ARN').optional(),
  /** The port the agent listens on inside the task (the security group must let the coordinator reach it). */
  agentPort: z.number().int().min(1024).max(65535).default(2222),
  /** Extra tags on tasks and task definitions (never secrets). */
  tags: z.record(z.string(), z.string()).default({}),
  /** A task definition no task has used for this long is deregistered. */
  definitionIdleTime: duration.default('1h'),
  /** How long a subnet or capacity provider that had no capacity is passed over. */
  capacityCooldown: duration.default('5m'),
});

/** A window of the week with its own pool size. Cron and timezone are checked in compile.ts (they need maxMachines/cron). */
const poolSchedule = z.strictObject({
  /** 5-field cron (minute hour day-of-month month day-of-week); active while the current minute matches any. */
  periods: z.array(z.string()).min(1, 'expected at least one cron period such as "* 8-18 * * mon-fri"'),
  /** IANA zone the periods are read in. */
  timezone: z.string().default('UTC'),
  idleCount: count(COUNT_LIMITS.idleCount).optional(),
  idleTime: duration.optional(),
  scaleFactor: number(NUMBER_LIMITS.scaleFactor).optional(),
  scaleFactorLimit: count(COUNT_LIMITS.scaleFactorLimit).optional(),
});

/** Warm machines waiting for jobs. Absent = a fresh machine per job and nothing idle (the defaults below). */
const pool = z.strictObject({
  /** Machines kept booted and waiting for a job (one job per machine at a time). */
  idleCount: count(COUNT_LIMITS.idleCount).default(0),
  /** An idle machine not needed for the idle target is removed after being idle this long. */
  idleTime: duration.default('10m'),
  /** Jobs a machine runs before it is removed; 1 = a fresh machine per job (the safe default for privileged DinD). */
  maxUseCount: count(COUNT_LIMITS.maxUseCount).default(1),
  /** Pool machines being created at the same time; absent = no limit beyond maxMachines. */
  maxGrowthRate: count(COUNT_LIMITS.maxGrowthRate).optional(),
  /** Idle target = max(idleCount, min(ceil(scaleFactor × busy machines), scaleFactorLimit)). */
  scaleFactor: number(NUMBER_LIMITS.scaleFactor).default(0),
  scaleFactorLimit: count(COUNT_LIMITS.scaleFactorLimit).optional(),
  /** The LAST schedule with a matching period overrides the keys it sets. */
  schedules: z.array(poolSchedule).default([]),
});

export const executorSchema = z.strictObject({
  name,
  provider: z.enum(['local', 'ec2', 'fargate']),
  style: z.enum(['shell', 'docker']).default('shell'),
  /** Build and service containers run privileged (style docker; never requested by a job). */
  privileged: z.boolean().default(false),
  docker: dockerStyle.optional(),
  cache: z.strictObject({ s3: s3Cache.optional() }).optional(),
  ecr: z
    .strictObject({
      /** Registries whose login the coordinator fetches for image pulls the instance role cannot do. */
      pullRegistries: z.array(ecrRegistry).default([]),
      /** Registries a DinD job may `docker push` to with a short-lived login handed to that job. */
      pushRegistries: z.array(ecrRegistry).default([]),
    })
    .optional(),
  ec2: ec2Provider.optional(),
  fargate: fargateProvider.optional(),
  maxMachines: count(COUNT_LIMITS.maxMachines),
  /** Extra variables for every job on this executor (gitlab-runner's `environment`). */
  environment: z.record(z.string(), z.string()).default({}),
  bootTimeout: duration.default('2m'),
  afterScriptTimeout: duration.default('5m'),
  /** Ordered routing: the first executor whose rules match takes the job; no rules = matches all. */
  match: routing.optional(),
  /** An IAM role each job on this executor gets credentials of (STS AssumeRole per job, masked variables). */
  jobRole: z
    .strictObject({
      roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@\-/]{1,512}$/, 'expected an IAM role ARN such as arn:aws:iam::123456789012:role/ci-deploy-dev'),
      /** Longest session asked for; each job's is its timeout plus 5 minutes, within this. */
      sessionDuration: duration.default('1h'),
      /** AWS_REGION and AWS_DEFAULT_REGION handed to the job with the credentials. */
      region: z.string().optional(),
      externalId: z.string().min(2).max(1224).optional(),
      /** Where STS is called (its regional endpoint); default the SDK's resolution. */
      stsRegion: z.string().optional(),
      /** How the job gets them: masked variables (one session), a credentials file renewed while the job
       *  runs, or `auto` (the file when the job's timeout is longer than one session). */
      credentials: z.enum(['auto', 'variables', 'file']).default('auto'),
    })
    .optional(),
  local: localProvider.optional(),
  pool: pool.optional(),
});

/** One active coordinator per fleet (README "One coordinator per fleet"). Exactly one store, checked in compile.ts. */
const lease = z.strictObject({
  /** An item in this table (partition key `pk`, type String) keyed by the fleet name: for coordinators that are replaced (ECS). */
  dynamodb: z
    .strictObject({
      table: z
        .string()
        .regex(
          /^([A-Za-z0-9_.-]{3,255}|arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/[A-Za-z0-9_.-]{3,255})$/,
          'expected a DynamoDB table name (3 to 255 letters, digits, _, . and -) or a table ARN',
        ),
      region: z.string().optional(),
    })
    .optional(),
  /** Files in this directory (default `<stateDir>/lease`): coordinators on one host only. */
  file: z.strictObject({ path: z.string().min(1).optional() }).optional(),
  /** How long a claim or renewal holds the lease; a crashed holder's successor waits at most this long. */
  duration: duration.default('30s'),
  renewInterval: duration.default('10s'),
  /** How far coordinators' clocks may disagree; the holder stops asking for jobs this long before expiry. */
  maxClockSkew: duration.default('5s'),
});

/** Another GitLab runner served by this coordinator (gitlab-runner's [[runners]]): its own token, the
 *  executors it owns, its own request loop. gitlab.token stays the deployment's runner and keeps the rest. */
const runner = z.strictObject({
  name,
  /** Runner authentication token (glrt-…) of this runner, created in GitLab with its own tags. */
  token: z.string().min(1),
  /** The executors (by name) this runner's jobs run on, in routing order; each belongs to one runner. */
  executors: z.array(name).min(1, 'expected at least one executor name'),
  /** Shown in each job's trace (default: the runner's name). */
  description: z.string().min(1).optional(),
  /** Job requests this runner sends at the same time (default: the top-level requestConcurrency). */
  requestConcurrency: count(COUNT_LIMITS.requestConcurrency).optional(),
});

export const configSchema = z.strictObject({
  gitlab: z.strictObject({
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://gitlab.example.com' }),
    /** Runner authentication token (glrt-…), or the token of a runner registered earlier. */
    token: z.string().min(1).optional(),
    /** Legacy registration token: fleetrunner registers on start and unregisters on stop. */
    registrationToken: z.string().min(1).optional(),
    /** GitLab's URL as machines reach it (artifacts, cache, git), when it differs from `url`. */
    machineUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Used only with registrationToken. */
    runner: z
      .strictObject({
        description: z.string().default('fleetrunner'),
        tags: z.array(z.string()).default([]),
        runUntagged: z.boolean().default(true),
        locked: z.boolean().default(false),
        maximumTimeout: duration.optional(),
      })
      .default({ description: 'fleetrunner', tags: [], runUntagged: true, locked: false }),
    /** Delete this coordinator's runner manager from GitLab on a clean stop (glrt- tokens). */
    unregisterOnStop: z.boolean().default(true),
    /** Longest wait between two tries to deliver a job's final state while GitLab is unavailable. */
    finalUpdateMaxBackoff: duration.default('5m'),
    /** Where a runner token GitLab rotated is kept for the next coordinator task. Absent: <stateDir>/runner-token.json. */
    rotatedToken: z
      .strictObject({
        /** An SSM Parameter Store SecureString the coordinator creates and overwrites (Fargate: the disk is empty at every start). */
        ssmParameter: z
          .string()
          .regex(/^\/(?!aws|ssm)[A-Za-z0-9_.\-/]{1,1010}$/i, 'expected an SSM parameter name such as /fleetrunner/prod/runner-token (a path starting with /, not under /aws or /ssm)'),
        region: z.string().optional(),
        /** KMS key (id, alias or ARN) that encrypts it; default: the account's aws/ssm key. */
        kmsKeyId: z.string().min(1).optional(),
      })
      .optional(),
  }),
  concurrent: count(COUNT_LIMITS.concurrent),
  /** Job requests sent to GitLab at the same time (gitlab-runner's request_concurrency). */
  requestConcurrency: count(COUNT_LIMITS.requestConcurrency).default(1),
  /** Pause after GitLab answered "no job" (gitlab-runner's check_interval). */
  checkInterval: duration.default('3s'),
  /** On SIGTERM: how long running jobs may take to finish before they are failed. */
  shutdownTimeout: duration.default('1h'),
  /** On SIGTERM: 'drain' lets running jobs finish and removes the machines; 'handoff' leaves running jobs
   *  and idle machines to a successor coordinator. Default: handoff on ECS (ECS_CONTAINER_METADATA_URI_V4
   *  set), drain elsewhere (decided in cli/). */
  onShutdown: z.enum(['drain', 'handoff']).optional(),
  /** With onShutdown: handoff, the bound for flushing traces and recording checkpoints before exit. */
  handoffTimeout: duration.default('30s'),
  /** Trace size limit per job (gitlab-runner's output_limit, 4096 KB by default). */
  outputLimit: size.default('4MiB'),
  /** Names the fleet in ownership tags; two coordinators of one fleet never touch each other's machines. */
  fleet: name.default('fleetrunner'),
  /** Where the coordinator keeps its system id and trace spool. */
  stateDir: z.string().optional(),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info'), format: z.enum(['json', 'pretty']).default('json') })
    .default({ level: 'info', format: 'json' }),
  /** Absent: no lease, the coordinator starts at once as it always did. */
  lease: lease.optional(),
  /** host:port, checked in compile.ts. */
  metrics: z.strictObject({ listen: z.string().optional() }).default({}),
  executors: z.array(executorSchema).min(1, 'expected at least one executor'),
  /** More GitLab runners in this coordinator, each owning some of the executors (README "Several runners"). */
  runners: z.array(runner).default([]),
});

export type RawConfig = z.infer<typeof configSchema>;
