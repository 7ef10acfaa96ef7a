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
