import { describe, expect, it } from 'vitest';
import { cacheKeyDir, localCacheFile, projectDirs } from '../../../src/jobs/dirs.js';
import { UnsupportedJobError } from '../../../src/jobs/index.js';
import { ctx, job } from './fixtures.js';

describe('project and cache paths', () => {
  it('puts a disposable job under <builds>/<full path>, a shared one under <short token>/<concurrent id>', () => {
    expect(projectDirs(job(), ctx())).toEqual({
      projectDir: '/home/fr/builds/group/sub/app',
      tmpDir: '/home/fr/builds/group/sub/app.tmp',
    });
    expect(projectDirs(job(), ctx({ sharedEnvironment: true })).projectDir).toBe('/home/fr/builds/xYz12345/2/group/sub/app');
  });

  it('falls back to the repo path, then project-<id>, for missing or unsafe full paths', () => {
    const j = job();
    j.job_info.project_full_path = ''; // what the boundary makes of a missing or null full path
    expect(projectDirs(j, ctx()).projectDir).toBe('/home/fr/builds/group/sub/app');
    const evil = job({ job_info: { ...job().job_info, name: 'x', project_id: 42, project_full_path: '../../etc' } });
    evil.git_info.repo_url = 'https://h/../x.git';
    expect(projectDirs(evil, ctx()).projectDir).toBe('/home/fr/builds/x');
    const worse = job({ job_info: { ...job().job_info, name: 'x', project_id: 42, project_full_path: 'a/../../b' } });
    worse.git_info.repo_url = 'not a url';
    expect(projectDirs(worse, ctx()).projectDir).toBe('/home/fr/builds/project-42');
  });

  it('keeps cache keys inside <cacheDir>/<project id>', () => {
    expect(localCacheFile(ctx(), 42, 'node-modules-main')).toBe('/home/fr/cache/42/node-modules-main/cache.zip');
    expect(cacheKeyDir('a/b')).toBe('a%2Fb');
    expect(cacheKeyDir('..')).toBe('%2E%2E');
    expect(cacheKeyDir('.')).toBe('%2E');
    expect(cacheKeyDir('key with space ü')).toBe('key%20with%20space%20%C3%BC');
    expect(cacheKeyDir('a/b')).not.toBe(cacheKeyDir('a%2Fb'));
  });

  it('refuses relative builds and cache dirs', () => {
    expect(() => projectDirs(job(), ctx({ buildsDir: 'builds' }))).toThrow(UnsupportedJobError);
    expect(() => localCacheFile(ctx({ cacheDir: '/x/../y' }), 1, 'k')).toThrow(UnsupportedJobError);
  });
});
