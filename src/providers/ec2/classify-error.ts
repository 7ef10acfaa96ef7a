// Every AWS error the ec2 provider sees is classified here, once: what to do next follows from the class.
//   capacity  → try the next pool now and bench this one (scope says which pools share the shortage)
//   throttled → retry with backoff + jitter (the account's request bucket is empty)
//   transient → retry with backoff (5xx, network)
//   not-found → the instance is gone: success for terminate
//   permanent → bad parameters, permissions, missing AMI/subnet: retrying will not help, surface AWS's message

export type Ec2ErrorKind = 'capacity' | 'throttled' | 'transient' | 'not-found' | 'permanent';

/** Which pools a capacity error says are short: one subnet × type × market, a whole subnet, or a whole market. */
export type CapacityScope = 'pool' | 'subnet' | 'market';

export interface Ec2ErrorClass {
  kind: Ec2ErrorKind;
  /** AWS error code (the SDK's `name`), or the Node error code for network errors. */
  code: string;
  message: string;
  /** Set for kind 'capacity'. */
  scope?: CapacityScope;
}

const CAPACITY: Readonly<Record<string, CapacityScope>> = {
  InsufficientInstanceCapacity: 'pool', // on-demand or spot, per AZ and type
  InsufficientCapacity: 'pool',
  InsufficientHostCapacity: 'pool',
  InsufficientReservedInstanceCapacity: 'pool',
  // "Your requested instance type is not supported in your requested Availability Zone" (or not as spot).
  Unsupported: 'pool',
  // We set no max price (it defaults to the on-demand price): the spot price in this pool is above it.
  SpotMaxPriceTooLow: 'pool',
  InsufficientFreeAddressesInSubnet: 'subnet',
  // Quotas: the whole market is out until machines go away, so the next pool of that market would fail too.
  MaxSpotInstanceCountExceeded: 'market',
  VcpuLimitExceeded: 'market',
  InstanceLimitExceeded: 'market',
};

const THROTTLED = new Set([
  'RequestLimitExceeded', // EC2's own code
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'EC2ThrottledException',
  'SlowDown',
]);

const TRANSIENT = new Set([
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'RequestTimeTooSkewed', // the SDK corrects its clock offset from the response: the next try signs right
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

// Only instance ids: InvalidSubnetID.NotFound or InvalidAMIID.NotFound are configuration errors (permanent).
const NOT_FOUND = new Set(['InvalidInstanceID.NotFound', 'InvalidInstanceID.Malformed']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: { throttling?: unknown };
}

function codeOf(e: SdkErrorShape): string {
  // Network errors carry the Node code (ECONNRESET); SDK service errors carry the AWS code as `name`.
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code;
  if (typeof e.name === 'string' && e.name !== 'Error') return e.name;
  if (typeof e.code === 'string') return e.code;
  return 'Error';
}

export function classifyEc2Error(err: unknown): Ec2ErrorClass {
  if (typeof err !== 'object' || err === null) return { kind: 'permanent', code: 'Error', message: String(err) };
  const e = err as SdkErrorShape;
  const code = codeOf(e);
  const message = typeof e.message === 'string' && e.message ? e.message : code;
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;

  const scope = CAPACITY[code];
  if (scope) return { kind: 'capacity', code, message, scope };
  if (THROTTLED.has(code) || e.$retryable?.throttling === true || status === 429) return { kind: 'throttled', code, message };
  if (NOT_FOUND.has(code)) return { kind: 'not-found', code, message };
  if (TRANSIENT.has(code)) return { kind: 'transient', code, message };
  // Unknown server-side faults are worth another try; unknown client faults are ours to fix.
  if (e.$fault === 'server' || (status !== undefined && status >= 500)) return { kind: 'transient', code, message };
  return { kind: 'permanent', code, message };
}

/** "i-0abc, i-0def" out of "The instance IDs 'i-0abc, i-0def' do not exist" (TerminateInstances fails as a whole). */
export function instanceIdsInMessage(message: string): string[] {
  return [...new Set(message.match(/\bi-[0-9a-f]{8,17}\b/g) ?? [])];
}
