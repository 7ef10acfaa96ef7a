// Settings of the AWS-backed providers, as compiled from the config file (config/ builds them; providers
// read them). Here in core/ so providers depend on core only.

export interface S3CacheConfig {
  bucket: string;
  prefix: string;
  region?: string;
  endpoint?: string;
  forcePathStyle: boolean;
  urlExpiryMs: number;
}

export interface Ec2ProviderConfig {
  region?: string;
  ami?: string;
  amiParameter: string;
  instanceTypes: readonly string[];
  subnets: readonly string[];
  securityGroups: readonly string[];
  iamInstanceProfile?: string;
  spot: boolean;
  onDemandFallback: boolean;
  rootVolume: { sizeGb: number; type: 'gp3' | 'gp2' | 'io1' | 'io2'; encrypted: boolean; kmsKeyId?: string; iops?: number; throughput?: number; deviceName: string };
  associatePublicIp: boolean;
  connectVia: 'private' | 'public';
  sshUser: string;
  tags: Readonly<Record<string, string>>;
  bakedAmi: boolean;
  userDataTemplate?: string;
  capacityCooldownMs: number;
  /** Most instances one RunInstances call launches when launches queue up behind its request rate; they
   *  share one SSH host key pair. 1: one call and one host key per instance. Default 50. */
  launchBatch?: number;
  /** The instance's agent powers it off after idleTimeoutMs without a job or a coordinator heartbeat, and at
   *  maxLifetimeMs after boot (templates/ec2-user-data.yaml). */
  watchdog: { idleTimeoutMs: number; maxLifetimeMs: number };
  /** fleet/spot-breaker.ts: `interruptions` within `windowMs` → on-demand only for `onDemandForMs`. */
  spotCircuitBreaker: { interruptions: number; windowMs: number; onDemandForMs: number };
}

/** A capacity provider of ECS, tried in the configured order: the next one when this one has no capacity. */
export type FargateCapacityProvider = 'FARGATE_SPOT' | 'FARGATE';

export interface FargateProviderConfig {
  region?: string;
  cluster: string;
  /** Private subnets across AZs; one per RunTask, the next one when a subnet has no free address. */
  subnets: readonly string[];
  securityGroups: readonly string[];
  assignPublicIp: boolean;
  /** Fallback order (FARGATE_SPOT then FARGATE by default): each RunTask names one of them. */
  capacityProviderStrategy: readonly FargateCapacityProvider[];
  platformVersion: string;
  /** Task ephemeral storage in GiB (21–200); 20, Fargate's default, is sent as nothing. */
  ephemeralStorageGb: number;
  /** The job image when a job names none. */
  image: string;
  /** The image whose entry point copies the agent bundle into the task's shared volume (docs/architecture.md). */
  helperImage: string;
  /** Task sizes: CPU units and memory MiB; `default` when the job asks for nothing. */
  cpu: { default: number; min: number; max: number };
  memoryMiB: { default: number; min: number; max: number };
  executionRoleArn?: string;
  /** The task role (the executor's `jobRole.roleArn`): the AWS identity the job's processes get from the
   *  container credentials endpoint. */
  jobRole?: string;
  /** The port the agent listens on in the task. */
  agentPort: number;
  tags: Readonly<Record<string, string>>;
  /** How long a task definition no task uses stays registered. */
  definitionIdleMs: number;
  /** How long a subnet or capacity provider that had no capacity is passed over. */
  capacityCooldownMs: number;
  /** RUNNING to answering SSH, and RunTask to RUNNING: the boot deadline. */
  bootTimeoutMs: number;
}
