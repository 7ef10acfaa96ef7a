import { describe, expect, it } from 'vitest';
import type { JobCache, JobPlan } from '../../../src/core/index.js';
import { curlConfigUrl, displayUrl } from '../../../src/jobs/cache-presigned.js';
import { buildPlan, cacheRequest, UnsupportedJobError, type CacheStore, type PlanContext } from '../../../src/jobs/index.js';
import { jobCache } from '../../helpers/job-payload.js';
import { body, ctx, job } from './fixtures.js';

const HOST = 'https://fr-cache.s3.eu-west-1.amazonaws.com';
const SECRET_QUERY = 'X-Amz-Credential=ASIAEXAMPLE%2F20250101&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE&X-Amz-Signature=0123abcd';

function url(path: string, method: string): string {
  return `${HOST}/${path}?${SECRET_QUERY}&x-id=${method}`;
}

/** A presigned store with GET and PUT for every key the job asks for (as S3CacheSigner would). */
function presigned(jobCache: JobCache[], c: PlanContext = ctx(), vars = [{ key: 'CI_COMMIT_REF_SLUG', value: 'feat-x' }]): { plan: JobPlan; store: CacheStore } {
  const j = job({ cache: jobCache, variables: [...job().variables, ...vars] });
  const req = cacheRequest(j, c);
  const entries: Record<string, { get?: string; put?: string }> = {};
  for (const u of req.keys) {
    const path = `runner/${req.projectId}/${encodeURIComponent(u.key)}/cache.zip`;
    entries[u.key] = { ...(u.pull && { get: url(path, 'GetObject') }), ...(u.push && { put: url(path, 'PutObject') }) };
  }
  const store: CacheStore = { kind: 'presigned', entries };
  return { plan: buildPlan(j, { ...c, cacheStore: store }), store };
}

function cacheBodies(plan: JobPlan): string[] {
  return [...plan.prepare, ...plan.onSuccess, ...plan.onFailure].filter((s) => /cache/.test(s.name)).map((s) => body(s.script));
}

describe('cacheRequest', () => {
  it('lists the key, its fallbacks and CACHE_FALLBACK_KEY in restore order; only the key is pushed', () => {
    const j = job({
      cache: [jobCache({ key: 'deps-$CI_COMMIT_REF_SLUG', fallback_keys: ['deps-main', 'deps-$CI_DEFAULT_BRANCH'], paths: ['vendor'] })],
      variables: [
        ...job().variables,
        { key: 'CI_COMMIT_REF_SLUG', value: 'feat-x' },
        { key: 'CI_DEFAULT_BRANCH', value: 'trunk' },
        { key: 'CACHE_FALLBACK_KEY', value: 'global' },
      ],
    });
    expect(cacheRequest(j, ctx())).toEqual({
      projectId: 42,
      keys: [
        { key: 'deps-feat-x', pull: true, push: true },
        { key: 'deps-main', pull: true, push: false },
        { key: 'deps-trunk', pull: true, push: false },
        { key: 'global', pull: true, push: false },
      ],
    });
  });

  it('follows policy and skips caches without paths; the default key is <job name>/<ref>', () => {
    const j = job({
      cache: [
        jobCache({ key: 'only-pull', paths: ['a'], policy: 'pull' }),
        jobCache({ key: 'only-push', paths: ['b'], policy: 'push', when: 'on_failure' }),
        jobCache({ key: 'empty', paths: [] }),
        jobCache({ key: '', paths: ['c'] }),
      ],
    });
    expect(cacheRequest(j, ctx()).keys).toEqual([
      { key: 'only-pull', pull: true, push: false },
      { key: 'test/main', pull: true, push: true },
      { key: 'only-push', pull: false, push: true },
    ]);
  });
});

describe('restore/archive with a presigned store', () => {
  const cache: JobCache[] = [jobCache({ key: 'deps-$CI_COMMIT_REF_SLUG', fallback_keys: ['deps-main'], paths: ['vendor'], policy: 'pull-push' })];

  it('never puts a URL on a command line: only a builtin printf writes it to a private curl config', () => {
    const { plan } = presigned(cache);
    const bodies = cacheBodies(plan);
    expect(bodies).toHaveLength(2);
    // The only place a URL may appear: a mode-600 file written by the printf builtin, xtrace paused.
    const write =
      /\{ _fr_xtrace=\$-; set \+x; \} 2>\/dev\/null\n\s*rm -f (\S+\/cache-url\.curlrc)\n\s*\(umask 077 && printf %s 'url = "https:\/\/[^'"]*"\n' > \1 \)\n\s*case \$_fr_xtrace in \*x\*\) set -x ;; esac\n/g;
    for (const b of bodies) {
      expect(b.match(write)?.length).toBeGreaterThan(0);
      const rest = b.replace(write, '');
      expect(rest).not.toContain('X-Amz-');
      expect(rest).not.toContain('/cache.zip?');
      for (const line of rest.split('\n').filter((l) => /\bcurl\b/.test(l))) expect(line).not.toMatch(/https?:\/\//);
      // The config is removed right after the transfer.
      expect(b).toMatch(/_fr_cache_(get|put) \S+cache-url\.curlrc \S+ \|\| _fr_cache_rc=\$\?\n\s*rm -f \S+cache-url\.curlrc\n/);
    }
  });

  it('shows only scheme://host/path in the log', () => {
    const { plan } = presigned(cache);
    const [restore, archive] = cacheBodies(plan);
    expect(restore).toContain(`'Downloading cache from ${HOST}/runner/42/deps-feat-x/cache.zip'`);
    expect(archive).toContain(`'Uploading cache.zip to ${HOST}/runner/42/deps-feat-x/cache.zip'`);
    expect(displayUrl(`https://u:p@h.example:8443/a/b.zip?X-Amz-Signature=s#f`)).toBe('https://h.example:8443/a/b.zip');
  });

  it('tries the key, then each fallback, in order; a 404 moves on to the next key', () => {
    const { plan } = presigned(cache);
    const restore = body(plan.prepare.find((s) => s.name === 'restore_cache')!.script);
    const checks = [...restore.matchAll(/Checking cache for ([^.]+)\.\.\./g)].map((m) => m[1]);
    expect(checks).toEqual(['deps-feat-x', 'deps-main']);
    expect(restore).toContain('_fr_cache_get() {');
    expect(restore).toContain("'WARNING: deps-feat-x: cache not found'");
    expect(restore.indexOf('/runner/42/deps-feat-x/')).toBeLessThan(restore.indexOf('/runner/42/deps-main/'));
  });

  it('warns for a key the coordinator gave no URL for, and skips the transfer', () => {
    const j = job({ cache });
    const store: CacheStore = { kind: 'presigned', entries: { 'deps-main': { get: url('x', 'GetObject') } } };
    const plan = buildPlan(j, { ...ctx(), cacheStore: store });
    const restore = body(plan.prepare.find((s) => s.name === 'restore_cache')!.script);
    expect(restore).toContain("'WARNING: deps-: no download URL was provided for this key, skipped'");
    expect(restore).toContain('Checking cache for deps-main...');
    const archive = body(plan.onSuccess[0]!.script);
    expect(archive).toContain("'WARNING: deps-: no upload URL was provided for this key, cache not created'");
    expect(archive).not.toContain('_fr_collect /');
  });

  it('a cache key named like an Object.prototype member gets no URL from the prototype', () => {
    const j = job({ cache: [jobCache({ key: 'constructor', paths: ['a'] })] });
    const plan = buildPlan(j, { ...ctx(), cacheStore: { kind: 'presigned', entries: {} } });
    expect(body(plan.prepare.find((s) => s.name === 'restore_cache')!.script)).toContain('no download URL was provided');
  });

  it('keeps policy and when as in local mode', () => {
    const { plan } = presigned([
      jobCache({ key: 'p', paths: ['a'], policy: 'pull' }),
      jobCache({ key: 'f', paths: ['b'], policy: 'push', when: 'on_failure' }),
    ]);
    const restore = body(plan.prepare.find((s) => s.name === 'restore_cache')!.script);
    expect(restore).toContain('Checking cache for p...');
    expect(restore).toContain('Not downloading cache f due to policy');
    expect(plan.onSuccess).toEqual([]);
    expect(plan.onFailure.map((s) => s.name)).toEqual(['archive_cache_on_failure']);
    const archive = body(plan.onFailure[0]!.script);
    expect(archive).toContain('Creating cache f...');
    expect(archive).not.toContain('Creating cache p');
  });

  it('refuses URLs that are not http(s) and unknown store kinds', () => {
    const j = job({ cache });
    expect(() => buildPlan(j, { ...ctx(), cacheStore: { kind: 'presigned', entries: { 'deps-': { get: 'file:///etc/passwd' } } } })).toThrow(TypeError);
    expect(() => buildPlan(j, { ...ctx(), cacheStore: { kind: 'gcs' } as unknown as CacheStore })).toThrow(UnsupportedJobError);
  });

  it('writes curl config values with curl quoting', () => {
    expect(curlConfigUrl('https://h/a?b="c"\\d')).toBe('url = "https://h/a?b=\\"c\\"\\\\d"\n');
    expect(() => curlConfigUrl('https://h/a\nurl = "http://evil"')).toThrow(TypeError);
  });
});
