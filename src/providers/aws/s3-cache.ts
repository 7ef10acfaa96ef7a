// The shared cache in S3, reached by the machine through URLs the coordinator presigns per job: the
// machine's instance role needs no S3 access, and a job can only touch its own project's keys.
// The coordinator's role needs s3:GetObject and s3:PutObject on `<bucket>/<prefix>*`, and s3:ListBucket on
// the bucket: without it S3 answers a missing key with 403 instead of 404, and the job log says
// "Downloading cache failed: 403" where it should say "cache not found".

import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3CacheConfig } from '../../core/provider-config.js';
import { PermanentError, RetryableError, errorMessage, type Clock } from '../../core/index.js';

/** SigV4 presigned URLs live at most 7 days. */
export const MAX_URL_EXPIRY_MS = 7 * 24 * 3600 * 1000;

/** One expanded cache key and what the job may do with it (the shape jobs' `cacheRequest` returns). */
export interface CacheKeyUse {
  key: string;
  pull: boolean;
  push: boolean;
}

export interface CacheSignRequest {
  projectId: number;
  keys: readonly CacheKeyUse[];
}

/** A `CacheStore` of kind `presigned` for `PlanContext.cacheStore`. */
export interface PresignedCacheStore {
  kind: 'presigned';
  entries: Record<string, { get?: string; put?: string }>;
  /** ms since the epoch; the URLs answer 403 after this. */
  expiresAt: number;
}

export interface S3CacheSignerOptions {
  s3: S3Client;
  config: S3CacheConfig;
  clock: Clock;
}

/** A key as one path segment: percent-encoded outside [A-Za-z0-9_.-] (so `/` cannot nest and distinct keys
 *  never collide), and a name of only dots encoded too, so no key can mean `.` or `..`. */
export function cacheKeySegment(key: string): string {
  const encoded = [...Buffer.from(key, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_.-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return /^\.*$/.test(encoded) ? encoded.replaceAll('.', '%2E') : encoded;
}

/** `<prefix>/<project id>/<key segment>/cache.zip`; a non-empty prefix gets its `/` if it lacks one. */
export function cacheObjectKey(prefix: string, projectId: number, key: string): string {
  if (!Number.isSafeInteger(projectId) || projectId <= 0) throw new TypeError(`bad project id ${projectId}`);
  const p = prefix.replace(/^\/+/, '');
  return `${p === '' || p.endsWith('/') ? p : `${p}/`}${projectId}/${cacheKeySegment(key)}/cache.zip`;
}

// Since SDK 3.729 S3 commands carry a request checksum by default; presigned, that becomes the CRC of an
// EMPTY body in the query and S3 rejects the real upload. The machine sends plain bytes: sign no checksum.
const CHECKSUM_HEADER = /^x-amz-(checksum-[a-z0-9-]+|sdk-checksum-algorithm)$/i;

const stripChecksumHeaders =
  <A extends { request: unknown }, R>(next: (args: A) => Promise<R>) =>
  async (args: A): Promise<R> => {
    const headers = (args.request as { headers?: Record<string, string> } | undefined)?.headers;
    if (headers) for (const h of Object.keys(headers)) if (CHECKSUM_HEADER.test(h)) delete headers[h];
    return next(args);
  };

const STRIP = { step: 'build', priority: 'low', name: 'fleetrunnerPresignWithoutChecksum' } as const;

function withoutChecksums(command: GetObjectCommand): GetObjectCommand;
function withoutChecksums(command: PutObjectCommand): PutObjectCommand;
function withoutChecksums(command: GetObjectCommand | PutObjectCommand): GetObjectCommand | PutObjectCommand {
  if (command instanceof PutObjectCommand) command.middlewareStack.add(stripChecksumHeaders, STRIP);
  else command.middlewareStack.add(stripChecksumHeaders, STRIP);
  return command;
}

function classify(e: unknown): Error {
  const name = e instanceof Error ? e.name : '';
  const message = `cannot presign S3 cache URLs: ${errorMessage(e)}`;
  // Credentials come from the ECS/IMDS endpoints at run time: a failure there is usually passing.
  if (name === 'CredentialsProviderError' || name === 'TimeoutError') return new RetryableError(message, { cause: e });
  return new PermanentError(message, { cause: e });
}

export class S3CacheSigner {
  private readonly s3: S3Client;
  private readonly config: S3CacheConfig;
  private readonly clock: Clock;

  constructor(o: S3CacheSignerOptions) {
    this.s3 = o.s3;
    this.config = o.config;
    this.clock = o.clock;
  }

  objectKey(projectId: number, key: string): string {
    return cacheObjectKey(this.config.prefix, projectId, key);
  }

  /**
   * GET URLs for every key the job may restore (key, then fallbacks) and PUT URLs for the keys it may
   * archive, all valid for `urlExpiryMs` from now. The PUT signs only the host: `curl --upload-file`
   * works with no Content-Type or checksum header. URLs signed with temporary credentials (a task role)
   * stop working when those credentials expire, whichever comes first.
   * Throws RetryableError (credentials not available) or PermanentError.
   */
  async presignFor(request: CacheSignRequest): Promise<PresignedCacheStore> {
    const now = this.clock.now();
    const expiresIn = Math.max(1, Math.floor(Math.min(this.config.urlExpiryMs, MAX_URL_EXPIRY_MS) / 1000));
    const options = { expiresIn, signingDate: new Date(now) };
    const Bucket = this.config.bucket;
    const sign = async (use: CacheKeyUse): Promise<[string, { get?: string; put?: string }]> => {
      const Key = this.objectKey(request.projectId, use.key);
      const urls: { get?: string; put?: string } = {};
      if (use.pull) urls.get = await getSignedUrl(this.s3, withoutChecksums(new GetObjectCommand({ Bucket, Key })), options);
      if (use.push) urls.put = await getSignedUrl(this.s3, withoutChecksums(new PutObjectCommand({ Bucket, Key })), options);
      return [use.key, urls];
    };
    try {
      const merged = new Map<string, CacheKeyUse>();
      for (const u of request.keys) {
        const m = merged.get(u.key);
        merged.set(u.key, { key: u.key, pull: u.pull || (m?.pull ?? false), push: u.push || (m?.push ?? false) });
      }
      const pairs = await Promise.all([...merged.values()].filter((u) => u.pull || u.push).map(sign));
      // fromEntries defines own properties: a key named "__proto__" stays an ordinary entry.
      return { kind: 'presigned', entries: Object.fromEntries(pairs), expiresAt: now + expiresIn * 1000 };
    } catch (e) {
      if (e instanceof TypeError) throw e;
      throw classify(e);
    }
  }
}
