// The one place AWS SDK clients are constructed. Everything the SDK resolves by itself stays with the SDK:
// region (config, else AWS_REGION / the profile), credentials (the default chain: env, web identity, ECS task
// role, IMDS, profiles), endpoints (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2, … and the profile's services
// section, which is how a user points fleetrunner at LocalStack). We never pass `endpoint` or `credentials`
// unless the caller asks, because passing them switches the SDK's own resolution off.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECRClient } from '@aws-sdk/client-ecr';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';

export interface AwsClientOptions {
  /** Region from config; otherwise the SDK's own resolution (AWS_REGION, profile). */
  region?: string;
  /**
   * Environment used only to see whether the user set the SDK's retry/app-id variables, so our defaults
   * don't override them. Default: process.env.
   */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface S3ClientOptions extends AwsClientOptions {
  /** An explicit endpoint (S3-compatible store); omitted, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL still apply. */
  endpoint?: string;
  forcePathStyle?: boolean;
}

export interface AwsClients {
  ec2: EC2Client;
  ssm: SSMClient;
  ecr: ECRClient;
  s3: S3Client;
}

/**
 * Retries. SSM, ECR, S3 and DynamoDB use the SDK's 'adaptive' mode: the standard policy (exponential backoff with
 * jitter, a retry quota) plus a client-side token bucket that slows every call of the client once AWS
 * throttles, which suits a long-running coordinator sharing the account's request buckets with other tools
 * ('standard' would suit a short-lived CLI).
 *
 * EC2 gets one attempt: the SDK counts every HTTP 5xx as retryable, and EC2 answers
 * InsufficientInstanceCapacity with a 500, so the SDK would repeat a launch into a pool that has no capacity
 * (burning RunInstances tokens: 5 burst, 2/s refill) before we could move to the next pool. The ec2
 * provider retries throttling and transient errors itself (providers/ec2/throttle-retry.ts), classified in
 * one place, and paces RunInstances (request-pacer.ts).
 */
const DEFAULT_RETRY_MODE = 'adaptive';
const DEFAULT_MAX_ATTEMPTS = 3;
const EC2_MAX_ATTEMPTS = 1;
const APP_ID = 'fleetrunner';

interface CommonConfig {
  region?: string;
  maxAttempts?: number;
  retryMode?: string;
  userAgentAppId?: string;
}

function commonConfig(o: AwsClientOptions, forcedMaxAttempts?: number): CommonConfig {
  const env = o.env ?? process.env;
  const c: CommonConfig = {};
  if (o.region !== undefined) c.region = o.region;
  // A user who sets AWS_MAX_ATTEMPTS / AWS_RETRY_MODE gets what they asked for (except on EC2, see above).
  if (forcedMaxAttempts !== undefined) c.maxAttempts = forcedMaxAttempts;
  else if (!env.AWS_MAX_ATTEMPTS) c.maxAttempts = DEFAULT_MAX_ATTEMPTS;
  if (!env.AWS_RETRY_MODE) c.retryMode = DEFAULT_RETRY_MODE;
  // Shows up in CloudTrail's userAgent, so operators can tell our calls from everyone else's.
  if (!env.AWS_SDK_UA_APP_ID) c.userAgentAppId = APP_ID;
  // No `logger`: the SDK would log request parameters, and RunInstances carries user data with a host key.
  return c;
}

export function createEc2Client(o: AwsClientOptions = {}): EC2Client {
  return new EC2Client(commonConfig(o, EC2_MAX_ATTEMPTS));
}

export function createSsmClient(o: AwsClientOptions = {}): SSMClient {
  return new SSMClient(commonConfig(o));
}

export function createEcrClient(o: AwsClientOptions = {}): ECRClient {
  return new ECRClient(commonConfig(o));
}

export function createS3Client(o: S3ClientOptions = {}): S3Client {
  return new S3Client({
    ...commonConfig(o),
    ...(o.endpoint !== undefined && { endpoint: o.endpoint }),
    ...(o.forcePathStyle !== undefined && { forcePathStyle: o.forcePathStyle }),
  });
}

/** STS for job credentials (`jobRole`); AWS_ENDPOINT_URL_STS points it elsewhere. */
export function createStsClient(o: AwsClientOptions = {}): STSClient {
  return new STSClient(commonConfig(o));
}

/** The lease table's client (`lease.dynamodb`); AWS_ENDPOINT_URL_DYNAMODB points it elsewhere. */
export function createDynamoDbClient(o: AwsClientOptions = {}): DynamoDBClient {
  return new DynamoDBClient(commonConfig(o));
}

/** All four clients for one region. Clients are cheap until first used (credentials resolve lazily). */
export function createAwsClients(o: AwsClientOptions = {}): AwsClients {
  return { ec2: createEc2Client(o), ssm: createSsmClient(o), ecr: createEcrClient(o), s3: createS3Client(o) };
}
