import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { S3CacheConfig } from '../../../src/config/index.js';
import { PermanentError, RetryableError, type Clock } from '../../../src/core/index.js';
import type { CacheRequest, CacheStore } from '../../../src/jobs/index.js';
import {
  cacheKeySegment,
  cacheObjectKey,
  S3CacheSigner,
  type CacheSignRequest,
  type PresignedCacheStore,
} from '../../../src/providers/aws/s3-cache.js';

const NOW = Date.UTC(2025, 0, 2, 3, 4, 5);
const clock: Clock = { now: () => NOW, sleep: async () => {} };

function config(over: Partial<S3CacheConfig> = {}): S3CacheConfig {
  return { bucket: 'fr-cache', prefix: 'runner/', forcePathStyle: false, urlExpiryMs: 3600_000, ...over };
}

function s3(over: ConstructorParameters<typeof S3Client>[0] = {}): S3Client {
  return new S3Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'ASIAEXAMPLEKEY', secretAccessKey: 'secret-key-never-in-url', sessionToken: 'session-token' },
    ...over,
  });
}

// Compile-time: what the signer returns is a PlanContext cache store, and what jobs asks for is what it signs.
const _storeFits: (s: PresignedCacheStore) => CacheStore = (s) => s;
const _requestFits: (r: CacheRequest) => CacheSignRequest = (r) => r;
void _storeFits;
void _requestFits;

describe('cache object keys', () => {
  it('are scoped to the project under the prefix', () => {
    expect(cacheObjectKey('runner/', 7, 'deps-main')).toBe('runner/7/deps-main/cache.zip');
    expect(cacheObjectKey('runner', 7, 'deps-main')).toBe('runner/7/deps-main/cache.zip');
    expect(cacheObjectKey('', 8, 'deps-main')).toBe('8/deps-main/cache.zip');
    expect(cacheObjectKey('/a/b/', 8, 'k')).toBe('a/b/8/k/cache.zip');
  });

  it('turn any key into one segment that cannot climb or collide', () => {
    expect(cacheKeySegment('../../escape')).toBe('..%2F..%2Fescape');
    expect(cacheKeySegment('..')).toBe('%2E%2E');
    expect(cacheKeySegment('.')).toBe('%2E');
    expect(cacheKeySegment('feature/x y')).toBe('feature%2Fx%20y');
    expect(cacheKeySegment('a%2Fb')).toBe('a%252Fb');
    expect(cacheKeySegment('clé')).toBe('cl%C3%A9');
    const keys = ['a/b', 'a%2Fb', 'a_b', 'a b', 'a+b'];
    expect(new Set(keys.map(cacheKeySegment)).size).toBe(keys.length);
    expect(() => cacheObjectKey('p/', 0, 'k')).toThrow(TypeError);
  });
});

describe('S3CacheSigner.presignFor', () => {
  const request: CacheSignRequest = {
    projectId: 42,
    keys: [
      { key: 'deps-main', pull: true, push: true },
      { key: 'fallback', pull: true, push: false },
      { key: 'push-only', pull: false, push: true },
    ],
  };

  it('signs GET for keys to restore and PUT for keys to archive, valid for urlExpiry from the clock', async () => {
    const signer = new S3CacheSigner({ s3: s3(), config: config({ urlExpiryMs: 900_000 }), clock });
    const store = await signer.presignFor(request);
    expect(store.kind).toBe('presigned');
    expect(store.expiresAt).toBe(NOW + 900_000);
    expect(Object.keys(store.entries)).toEqual(['deps-main', 'fallback', 'push-only']);
    expect(Object.keys(store.entries['fallback']!)).toEqual(['get']);
    expect(Object.keys(store.entries['push-only']!)).toEqual(['put']);
    const get = new URL(store.entries['deps-main']!.get!);
    const put = new URL(store.entries['deps-main']!.put!);
    expect(`${get.origin}${get.pathname}`).toBe('https://fr-cache.s3.eu-west-1.amazonaws.com/runner/42/deps-main/cache.zip');
    expect(put.searchParams.get('x-id')).toBe('PutObject');
    for (const u of [get, put]) {
      expect(u.searchParams.get('X-Amz-Expires')).toBe('900');
      expect(u.searchParams.get('X-Amz-Date')).toBe('20250102T030405Z');
      expect(u.searchParams.get('X-Amz-Credential')).toBe('ASIAEXAMPLEKEY/20250102/eu-west-1/s3/aws4_request');
      expect(u.searchParams.get('X-Amz-Security-Token')).toBe('session-token');
      expect(u.search).not.toContain('secret-key-never-in-url');
    }
  });

  it('PUT signs only the host: no checksum or content type, so curl --upload-file works against S3', async () => {
    const store = await new S3CacheSigner({ s3: s3(), config: config(), clock }).presignFor(request);
    for (const entry of Object.values(store.entries)) {
      for (const u of [entry.get, entry.put].filter((x): x is string => x !== undefined)) {
        const q = new URL(u).searchParams;
        expect(q.get('X-Amz-SignedHeaders')).toBe('host');
        expect([...q.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
      }
    }
  });

  it('uses path-style URLs for an S3-compatible endpoint', async () => {
    const client = s3({ endpoint: 'http://127.0.0.1:4568', forcePathStyle: true });
    const store = await new S3CacheSigner({ s3: client, config: config({ prefix: '' }), clock }).presignFor({ projectId: 3, keys: [{ key: 'a/b', pull: true, push: false }] });
    const u = new URL(store.entries['a/b']!.get!);
    expect(`${u.origin}${u.pathname}`).toBe('http://127.0.0.1:4568/fr-cache/3/a%252Fb/cache.zip');
  });

  it('caps the lifetime at the 7 days SigV4 allows, and merges duplicate keys', async () => {
    const store = await new S3CacheSigner({ s3: s3(), config: config({ urlExpiryMs: 30 * 24 * 3600_000 }), clock }).presignFor({
      projectId: 1,
      keys: [
        { key: 'k', pull: true, push: false },
        { key: 'k', pull: false, push: true },
      ],
    });
    expect(new URL(store.entries['k']!.get!).searchParams.get('X-Amz-Expires')).toBe('604800');
    expect(store.entries['k']!.put).toBeDefined();
  });

  it('a key named __proto__ stays an ordinary entry', async () => {
    const store = await new S3CacheSigner({ s3: s3(), config: config(), clock }).presignFor({ projectId: 1, keys: [{ key: '__proto__', pull: true, push: false }] });
    expect(Object.hasOwn(store.entries, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(store.entries)).toBe(Object.prototype);
  });

  it('classifies failures: credentials not available is retryable, a missing region is permanent', async () => {
    const noCreds = s3({
      credentials: async () => {
        const e = new Error('Could not load credentials from any providers');
        e.name = 'CredentialsProviderError';
        throw e;
      },
    });
    await expect(new S3CacheSigner({ s3: noCreds, config: config(), clock }).presignFor(request)).rejects.toBeInstanceOf(RetryableError);
    const noRegion = new S3Client({
      region: async () => {
        throw new Error('Region is missing');
      },
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    await expect(new S3CacheSigner({ s3: noRegion, config: config(), clock }).presignFor(request)).rejects.toBeInstanceOf(PermanentError);
  });
});
