// The presigned cache end to end: URLs signed by S3CacheSigner, the generated restore/archive stages run by
// bash with real curl/zip/unzip, against a real S3-compatible server (s3rver) that checks signatures and
// expiry. Two "machines" are two build roots that share nothing but the bucket.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3CacheConfig } from '../../../src/config/index.js';
import { systemClock, type Clock, type JobCache, type JobPayload, type JobPlan, type Stage } from '../../../src/core/index.js';
import { buildPlan, cacheRequest } from '../../../src/jobs/index.js';
import { S3CacheSigner } from '../../../src/providers/aws/s3-cache.js';
import { jobCache } from '../../helpers/job-payload.js';
import { startLocalS3, type LocalS3 } from '../aws/s3rver.js';
import { context, payload, removeTempDirs, runStage, tempDir } from './helpers.js';

const GITLAB = 'http://127.0.0.1:9';

let s3: LocalS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startLocalS3();
  client = s3.client();
});

afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  removeTempDirs();
});

function cacheConfig(over: Partial<S3CacheConfig> = {}): S3CacheConfig {
  return { bucket: s3.bucket, prefix: 'runner-cache/', forcePathStyle: true, urlExpiryMs: 3600_000, ...over };
}

interface Machine {
  root: string;
}

/** A job on a fresh "machine": its own builds and local cache dirs. */
async function planOn(
  machine: Machine,
  cache: JobCache[],
  o: { projectId?: number; vars?: JobPayload['variables']; clock?: Clock; config?: Partial<S3CacheConfig> } = {},
): Promise<JobPlan> {
  const base = payload(GITLAB, 'f'.repeat(40));
  const job: JobPayload = {
    ...base,
    job_info: { ...base.job_info, project_id: o.projectId ?? 7 },
    cache,
    variables: [...base.variables, { key: 'GIT_STRATEGY', value: 'none' }, ...(o.vars ?? [])],
  };
  const ctx = context(machine.root, GITLAB);
  const signer = new S3CacheSigner({ s3: client, config: cacheConfig(o.config), clock: o.clock ?? systemClock });
  const cacheStore = await signer.presignFor(cacheRequest(job, ctx));
  return buildPlan(job, { ...ctx, cacheStore });
}

async function run(stages: readonly Stage[], machine: Machine): Promise<string> {
  let out = '';
  for (const s of stages) {
    const r = await runStage(s, machine.root);
    out += r.stdout + r.stderr;
    expect(r.code, out).toBe(0);
  }
  // Presigned URLs carry credentials: none may reach the job log, and no config file may stay behind.
  expect(out).not.toMatch(/X-Amz-|Signature|S3RVER/i);
  return out;
}

/** Files the cache stages left in the job's private tmp dir (URL config, archives, lists). */
function cacheLeftovers(plan: JobPlan): string[] {
  const dir = `${plan.projectDir}.tmp`;
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.startsWith('cache-')) : [];
}

async function objectExists(key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    return true;
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw e;
  }
}

describe('presigned S3 cache round trip (s3rver)', () => {
  const cache: JobCache[] = [jobCache({ key: 'deps-$CI_COMMIT_REF_SLUG', paths: ['vendor/', '**/*.bin'], policy: 'pull-push', when: 'on_success' })];
  const vars = [{ key: 'CI_COMMIT_REF_SLUG', value: 'main' }];

  it('archives on one machine and restores on another', async () => {
    const a = { root: tempDir('fr-machine-a-') };
    const p1 = await planOn(a, cache, { vars });
    expect(p1.prepare.map((s) => s.name)).toEqual(['prepare_script', 'get_sources', 'restore_cache']);
    const first = await run(p1.prepare, a);
    expect(first).toContain('Checking cache for deps-main...');
    expect(first).toContain(`Downloading cache from ${s3.endpoint}/${s3.bucket}/runner-cache/7/deps-main/cache.zip`);
    expect(first).toContain('deps-main: cache not found');
    expect(first).toContain('Failed to extract cache');

    mkdirSync(join(p1.projectDir, 'vendor', 'lib'), { recursive: true });
    writeFileSync(join(p1.projectDir, 'vendor', 'lib', 'x.txt'), 'x');
    writeFileSync(join(p1.projectDir, 'top.bin'), 'top');
    writeFileSync(join(p1.projectDir, 'not-cached.txt'), 'no');
    const archived = await run(p1.onSuccess, a);
    expect(archived).toContain('Creating cache deps-main...');
    expect(archived).toContain(`Uploading cache.zip to ${s3.endpoint}/${s3.bucket}/runner-cache/7/deps-main/cache.zip`);
    expect(archived).toContain('Created cache');
    expect(await objectExists('runner-cache/7/deps-main/cache.zip')).toBe(true);
    expect(cacheLeftovers(p1)).toEqual([]);

    const b = { root: tempDir('fr-machine-b-') };
    const p2 = await planOn(b, cache, { vars });
    const restored = await run(p2.prepare, b);
    expect(restored).toContain('Successfully extracted cache');
    expect(readFileSync(join(p2.projectDir, 'vendor', 'lib', 'x.txt'), 'utf8')).toBe('x');
    expect(readFileSync(join(p2.projectDir, 'top.bin'), 'utf8')).toBe('top');
    expect(existsSync(join(p2.projectDir, 'not-cached.txt'))).toBe(false);
    expect(cacheLeftovers(p2)).toEqual([]);
    // Nothing went through the local cache dir: the bucket is the only shared state.
    expect(existsSync(join(b.root, 'cache'))).toBe(false);
  });

  it('another project with the same key neither sees nor overwrites the cache', async () => {
    const c = { root: tempDir('fr-machine-c-') };
    const p = await planOn(c, cache, { vars, projectId: 8 });
    const out = await run(p.prepare, c);
    expect(out).toContain('deps-main: cache not found');
    expect(existsSync(join(p.projectDir, 'vendor'))).toBe(false);
  });

  it('falls back to fallback_keys in order', async () => {
    const seedMachine = { root: tempDir('fr-machine-s-') };
    const seed = await planOn(seedMachine, [jobCache({ key: 'main/branch', paths: ['out'], policy: 'push', when: 'always' })]);
    await run(seed.prepare, seedMachine);
    mkdirSync(join(seed.projectDir, 'out'));
    writeFileSync(join(seed.projectDir, 'out', 'f'), 'seeded');
    await run(seed.onFailure, seedMachine);
    expect(await objectExists('runner-cache/7/main%2Fbranch/cache.zip')).toBe(true);

    const d = { root: tempDir('fr-machine-d-') };
    const p = await planOn(d, [jobCache({ key: 'feature/x', fallback_keys: ['missing', 'main/branch'], paths: ['out'], policy: 'pull' })]);
    const out = await run(p.prepare, d);
    const order = ['Checking cache for feature/x...', 'feature/x: cache not found', 'Checking cache for missing...', 'Checking cache for main/branch...', 'Successfully extracted cache'];
    const at = order.map((line) => out.indexOf(line));
    expect(at.every((i) => i >= 0), out).toBe(true);
    expect([...at].sort((x, y) => x - y)).toEqual(at);
    expect(readFileSync(join(p.projectDir, 'out', 'f'), 'utf8')).toBe('seeded');
    expect(p.onSuccess).toEqual([]);
  });

  it('an expired upload URL is a warning, not a failed stage', async () => {
    const e = { root: tempDir('fr-machine-e-') };
    const twoHoursAgo: Clock = { now: () => Date.now() - 2 * 3600_000, sleep: systemClock.sleep };
    const p = await planOn(e, [jobCache({ key: 'late', paths: ['out'] })], { clock: twoHoursAgo, config: { urlExpiryMs: 60_000 } });
    await run(p.prepare, e);
    mkdirSync(join(p.projectDir, 'out'));
    writeFileSync(join(p.projectDir, 'out', 'f'), 'x');
    const out = await run(p.onSuccess, e); // asserts exit code 0
    expect(out).toContain('Uploading cache.zip to');
    expect(out).toContain('WARNING: Uploading cache failed: 403 Forbidden');
    expect(out).toContain('Failed to create cache');
    expect(out).not.toContain('Created cache');
    expect(await objectExists('runner-cache/7/late/cache.zip')).toBe(false);
    expect(cacheLeftovers(p)).toEqual([]);
  });

  it('keeps URLs out of a CI_DEBUG_TRACE log', async () => {
    const f = { root: tempDir('fr-machine-f-') };
    const p = await planOn(f, cache, { vars: [...vars, { key: 'CI_DEBUG_TRACE', value: 'true' }] });
    const out = await run(p.prepare, f); // asserts no X-Amz-… in the output
    expect(out).toContain('+ _fr_cache_get');
    expect(out).toContain('Successfully extracted cache');
  });
});
