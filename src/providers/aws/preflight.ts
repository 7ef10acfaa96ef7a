// Preflight of the AWS services a job uses through the coordinator: the S3 cache bucket (HeadBucket: it exists
// and the coordinator may list it, which is what lets a missing cache key read as 404 instead of 403) and the
// ECR registries it logs jobs in to (ecr:GetAuthorizationToken, one call per region). The ECR token is
// dropped at once: it is never logged, returned or printed.

import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetAuthorizationTokenCommand, type ECRClient } from '@aws-sdk/client-ecr';

import type { CheckResult } from '../../core/preflight.js';
import type { S3CacheConfig } from '../../core/provider-config.js';
import { parseEcrRegistry } from './ecr.js';

const DEFAULT_TIMEOUT_MS = 20_000;

export interface S3CachePreflightOptions {
  executor: string;
  config: Pick<S3CacheConfig, 'bucket' | 'prefix'>;
  s3: S3Client;
  timeoutMs?: number;
}

export async function s3CachePreflight(o: S3CachePreflightOptions): Promise<CheckResult> {
  const base = { executor: o.executor, check: 's3-cache', target: `s3://${o.config.bucket}/${o.config.prefix.replace(/^\/+/, '')}` };
  try {
    await o.s3.send(new HeadBucketCommand({ Bucket: o.config.bucket }), { abortSignal: AbortSignal.timeout(o.timeoutMs ?? DEFAULT_TIMEOUT_MS) });
    return { ...base, status: 'pass', message: 'bucket exists and may be listed' };
  } catch (e) {
    const f = awsFailure(e);
    // HEAD answers carry no body: S3's code is only the status, so say what it means here.
    const hint =
      f.status === 404
        ? 'no such bucket'
        : f.status === 403
          ? 'access denied: the coordinator needs s3:ListBucket on the bucket (and s3:GetObject, s3:PutObject on the prefix)'
          : f.status === 301
            ? 'the bucket is in another region: set cache.s3.region'
            : undefined;
    return { ...base, status: 'fail', code: f.code, message: hint ?? f.message, retryable: f.retryable };
  }
}

export interface EcrPreflightOptions {
  executor: string;
  registries: readonly string[];
  /** A client for a region. */
  ecr: (region: string) => ECRClient;
  timeoutMs?: number;
}

/** One result per region (one login serves every registry of a region). */
export async function ecrPreflight(o: EcrPreflightOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const byRegion = new Map<string, string[]>();
  for (const r of new Set(o.registries)) {
    try {
      const ref = parseEcrRegistry(r);
      byRegion.set(ref.region, [...(byRegion.get(ref.region) ?? []), ref.registry]);
    } catch (e) {
      results.push({ executor: o.executor, check: 'ecr-login', target: r, status: 'fail', code: 'InvalidRegistry', message: e instanceof Error ? e.message : String(e) });
    }
  }
  for (const [region, registries] of byRegion) {
    const base = { executor: o.executor, check: 'ecr-login', target: registries.join(', ') };
    try {
      const out = await o.ecr(region).send(new GetAuthorizationTokenCommand({}), { abortSignal: AbortSignal.timeout(o.timeoutMs ?? DEFAULT_TIMEOUT_MS) });
      results.push(
        out?.authorizationData?.[0]?.authorizationToken
          ? { ...base, status: 'pass', message: `login available (region ${region})` }
          : { ...base, status: 'fail', code: 'NoAuthorizationData', message: `GetAuthorizationToken in ${region} returned no authorization data` },
      );
    } catch (e) {
      const f = awsFailure(e);
      const denied = /AccessDenied|NotAuthorized|UnauthorizedOperation/i.test(f.code);
      results.push({ ...base, status: 'fail', code: f.code, message: denied ? `the coordinator needs ecr:GetAuthorizationToken: ${f.message}` : f.message, retryable: f.retryable });
    }
  }
  return results;
}

interface AwsFailure {
  code: string;
  message: string;
  status: number | undefined;
  retryable: boolean;
}

function awsFailure(e: unknown): AwsFailure {
  const err = e as { name?: unknown; code?: unknown; message?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  const nodeCode = typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code) ? err.code : undefined;
  const name = typeof err?.name === 'string' && err.name !== 'Error' ? err.name : undefined;
  const status = typeof err?.$metadata?.httpStatusCode === 'number' ? err.$metadata.httpStatusCode : undefined;
  let code = nodeCode ?? name ?? (status !== undefined ? `HTTP ${status}` : 'Error');
  const timedOut = code === 'AbortError' || code === 'TimeoutError';
  if (timedOut) code = 'Timeout';
  const raw = typeof err?.message === 'string' && err.message && err.message !== 'UnknownError' ? err.message : code;
  const retryable =
    timedOut ||
    nodeCode !== undefined ||
    code === 'CredentialsProviderError' ||
    /Throttl|TooManyRequests|SlowDown|ServiceUnavailable|InternalError/i.test(code) ||
    status === 429 ||
    (status !== undefined && status >= 500);
  return { code, message: timedOut ? 'no answer from AWS in time' : raw.replace(/\s+/g, ' ').trim(), status, retryable };
}
