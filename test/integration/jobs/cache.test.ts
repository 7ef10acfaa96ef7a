import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobCache, JobPayload, JobPlan } from '../../../src/core/index.js';
import { buildPlan } from '../../../src/jobs/index.js';
import { jobCache } from '../../helpers/job-payload.js';
import { context, payload, runStage, tempDir, removeTempDirs } from './helpers.js';

afterAll(removeTempDirs);

const GITLAB = 'http://127.0.0.1:9';

describe('local cache round trip', () => {
  let root: string;
  beforeAll(() => {
    root = tempDir();
  });

  function plan(buildsDir: string, cache: JobCache[], extraVars: JobPayload['variables'] = []): JobPlan {
    const base = payload(GITLAB, 'f'.repeat(40));
    const job: JobPayload = { ...base, cache, variables: [...base.variables, { key: 'GIT_STRATEGY', value: 'none' }, ...extraVars] };
    return buildPlan(job, context(root, GITLAB, { buildsDir: join(root, buildsDir) }));
  }

  async function run(stages: JobPlan['prepare']): Promise<string> {
    let out = '';
    for (const s of stages) {
      const r = await runStage(s, root);
      out += r.stdout + r.stderr;
      expect(r.code, out).toBe(0);
    }
    return out;
  }

  it('archives on success and restores into a fresh project dir', async () => {
    const cache: JobCache[] = [jobCache({ key: 'deps-$CI_COMMIT_REF_SLUG', paths: ['vendor/', '**/*.bin'], policy: 'pull-push', when: 'on_success' })];
    const vars = [{ key: 'CI_COMMIT_REF_SLUG', value: 'main' }];
    const a = plan('b-a', cache, vars);
    expect(a.prepare.map((s) => s.name)).toEqual(['prepare_script', 'get_sources', 'restore_cache']);
    const firstRestore = await run(a.prepare);
    expect(firstRestore).toContain('Checking cache for deps-main...');
    expect(firstRestore).toContain('Failed to extract cache');
    mkdirSync(join(a.projectDir, 'vendor', 'lib', 'empty'), { recursive: true });
    writeFileSync(join(a.projectDir, 'vendor', 'lib', 'x.txt'), 'x');
    mkdirSync(join(a.projectDir, 'deep', 'er'), { recursive: true });
    writeFileSync(join(a.projectDir, 'deep', 'er', 'blob.bin'), 'bin');
    writeFileSync(join(a.projectDir, 'top.bin'), 'top');
    writeFileSync(join(a.projectDir, 'not-cached.txt'), 'no');

    expect(a.onSuccess.map((s) => s.name)).toEqual(['archive_cache']);
    expect(a.onFailure.map((s) => s.name)).toEqual([]);
    const archived = await run(a.onSuccess);
    expect(archived).toContain('Creating cache deps-main...');
    expect(archived).toContain('vendor/: found 4 matching artifact files and directories');
    expect(archived).toContain('**/*.bin: found 2 matching artifact files and directories');
    expect(archived).toContain('Created cache');
    expect(existsSync(join(root, 'cache', '7', 'deps-main', 'cache.zip'))).toBe(true);

    const b = plan('b-b', cache, vars);
    const restored = await run(b.prepare);
    expect(restored).toContain('Successfully extracted cache');
    expect(readFileSync(join(b.projectDir, 'vendor', 'lib', 'x.txt'), 'utf8')).toBe('x');
    expect(existsSync(join(b.projectDir, 'vendor', 'lib', 'empty'))).toBe(true);
    expect(readFileSync(join(b.projectDir, 'deep', 'er', 'blob.bin'), 'utf8')).toBe('bin');
    expect(existsSync(join(b.projectDir, 'not-cached.txt'))).toBe(false);
  });

  it('falls back to fallback_keys, and `pull` never archives', async () => {
    const seed = plan('b-seed', [jobCache({ key: 'main-branch', paths: ['out'], policy: 'push', when: 'always' })]);
    expect(seed.prepare.map((s) => s.name)).not.toContain('restore_cache');
    await run(seed.prepare);
    mkdirSync(join(seed.projectDir, 'out'));
    writeFileSync(join(seed.projectDir, 'out', 'f'), 'seeded');
    expect(seed.onFailure.map((s) => s.name)).toEqual(['archive_cache_on_failure']);
    await run(seed.onFailure);

    const c = plan('b-c', [jobCache({ key: 'feature/x', fallback_keys: ['missing', 'main-branch'], paths: ['out'], policy: 'pull' })]);
    const out = await run(c.prepare);
    expect(out).toContain('Checking cache for feature/x...');
    expect(out).toContain('Checking cache for missing...');
    expect(out).toContain('Checking cache for main-branch...');
    expect(out).toContain('Successfully extracted cache');
    expect(readFileSync(join(c.projectDir, 'out', 'f'), 'utf8')).toBe('seeded');
    expect(c.onSuccess).toEqual([]);
  });

  it('a key cannot escape its directory', async () => {
    const p = plan('b-esc', [jobCache({ key: '../../escape', paths: ['x'] })]);
    await run(p.prepare);
    writeFileSync(join(p.projectDir, 'x'), 'x');
    await run(p.onSuccess);
    expect(existsSync(join(root, 'cache', '7', '..%2F..%2Fescape', 'cache.zip'))).toBe(true);
    expect(existsSync(join(root, 'escape'))).toBe(false);
  });
});
