// The strict fake GitLab: artifact upload/download and git over smart HTTP (git http-backend).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import type { FakeGitLabOptions, JobSpec } from '../../src/fakegitlab/index.js';

const run = promisify(execFile);
const FEATURES = {
  artifacts: true, upload_multiple_artifacts: true, refspecs: true, artifacts_exclude: true, trace_reset: true,
  trace_checksum: true, trace_size: true, cancelable: true, return_exit_code: true, cancel_gracefully: true,
  fallback_cache_keys: true, multi_build_steps: true,
};
const EMPTY_OUTPUT = { checksum: 'crc32:00000000', bytesize: 0 };

type Job = { id: number; token: string } & Record<string, any>;

let fake: FakeGitLab;
let runnerToken: string;
let work: string;

async function startFake(opts: FakeGitLabOptions = {}): Promise<void> {
  fake = new FakeGitLab(opts);
  await fake.start();
  runnerToken = fake.addRunner().token;
}

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'fakegitlab-test-'));
  await startFake();
});
afterEach(async () => {
  await fake.stop();
  await rm(work, { recursive: true, force: true });
});

async function takeJob(): Promise<Job> {
  const res = await fetch(`${fake.url}/api/v4/jobs/request`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: runnerToken, system_id: 's_0123456789ab', info: { features: FEATURES } }),
  });
  expect(res.status).toBe(201);
  const job = (await res.json()) as Job;
  const ack = await putJob(job, { state: 'running' });
  expect(ack.status).toBe(200);
  return job;
}

function putJob(job: Job, body: Record<string, unknown>) {
  return fetch(`${fake.url}/api/v4/jobs/${job.id}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'JOB-TOKEN': job.token },
    body: JSON.stringify({ token: job.token, ...body }),
  });
}

function upload(job: Job, parts: Array<[string, string, string?]>, query = 'artifact_format=zip&artifact_type=archive') {
  const form = new FormData();
  for (const [name, content, filename] of parts) {
    if (filename) form.append(name, new Blob([content]), filename);
    else form.append(name, content);
  }
  return fetch(`${fake.url}/api/v4/jobs/${job.id}/artifacts?${query}`, { method: 'POST', headers: { 'JOB-TOKEN': job.token }, body: form });
}

async function pipeline(jobs: JobSpec[]) {
  const project = await fake.createProject({ path: 'group/app', files: { 'README.md': 'hello\n', 'src/a.txt': 'a\n' } });
  return { project, pipeline: await fake.createPipeline(project, jobs) };
}

const BUILD_AND_TEST: JobSpec[] = [
  { name: 'build', stage: 'build', script: ['make'], artifacts: { paths: ['out/'] } },
  { name: 'test', stage: 'test', script: ['make test'] },
];

describe('artifacts', () => {
  it('stores a one-part upload and serves it to a dependent running job', async () => {
    await pipeline(BUILD_AND_TEST);
    const build = await takeJob();
    const up = await upload(build, [['file', 'PK-zip-bytes', 'default.zip']]);
    expect(up.status).toBe(201);
    expect(await up.text()).toBe('"201"');
    expect(fake.job(build.id).artifacts[0]).toMatchObject({ type: 'archive', format: 'zip', filename: 'default.zip' });
    await putJob(build, { state: 'success', output: EMPTY_OUTPUT });

    const test = await takeJob();
    expect(test.dependencies).toEqual([
      { id: build.id, name: 'build', token: test.token, artifacts_file: { filename: 'default.zip', size: 12 } },
    ]);
    const url = `${fake.url}/api/v4/jobs/${build.id}/artifacts`;
    const dl = await fetch(`${url}?direct_download=true`, { headers: { 'JOB-TOKEN': test.token } });
    expect(dl.status).toBe(200);
    expect(await dl.text()).toBe('PK-zip-bytes');
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { 'JOB-TOKEN': build.token } })).status).toBe(403);
    expect(fake.takeViolations()).toHaveLength(2); // the two deliberate bad downloads
    const noArchive = await fetch(`${fake.url}/api/v4/jobs/${test.id}/artifacts`, { headers: { 'JOB-TOKEN': test.token } });
    expect(noArchive.status).toBe(404);
  });

  it('redirects direct downloads to a second local URL when configured', async () => {
    await fake.stop();
    await startFake({ directDownloadRedirect: true });
    await pipeline(BUILD_AND_TEST);
    const build = await takeJob();
    await upload(build, [['file', 'zipdata', 'artifacts.zip']]);
    await putJob(build, { state: 'success', output: EMPTY_OUTPUT });
    const test = await takeJob();
    const res = await fetch(`${fake.url}/api/v4/jobs/${build.id}/artifacts?direct_download=true`, {
      headers: { 'JOB-TOKEN': test.token },
      redirect: 'manual',
    });
    expect(res.status).toBe(302);
    const followed = await fetch(res.headers.get('location')!);
    expect(await followed.text()).toBe('zipdata');
    expect(fake.violations).toEqual([]);
  });

  it('flags extra multipart parts, a missing direct_download and a type without artifacts[] entry', async () => {
    await pipeline(BUILD_AND_TEST);
    const build = await takeJob();
    expect((await upload(build, [['file', 'x', 'a.zip'], ['token', build.token]])).status).toBe(201);
    expect(fake.takeViolations().join()).toMatch(/check 26.*exactly one multipart file part/);
    expect((await upload(build, [['file', 'x', 'junit.xml.gz']], 'artifact_type=junit&artifact_format=gzip')).status).toBe(201);
    expect(fake.takeViolations().join()).toMatch(/check 26.*artifact_type=junit/);
    await putJob(build, { state: 'success', output: EMPTY_OUTPUT });
    const test = await takeJob();
    await fetch(`${fake.url}/api/v4/jobs/${build.id}/artifacts`, { headers: { 'JOB-TOKEN': test.token } });
    expect(fake.takeViolations().join()).toMatch(/check 28.*direct_download=true/);
  });

  it('injects upload statuses and checks the retry rules', async () => {
    await pipeline([{ name: 'build', script: ['make'], artifacts: { paths: ['out/'] } }]);
    const build = await takeJob();
    fake.injectFaults({ artifactUpload: [503, 503, 413] });
    expect((await upload(build, [['file', 'x', 'a.zip']])).status).toBe(503);
    expect((await upload(build, [['file', 'x', 'a.zip']])).status).toBe(503);
    expect((await upload(build, [['file', 'x', 'a.zip']])).status).toBe(413);
    expect(fake.violations).toEqual([]);
    expect((await upload(build, [['file', 'x', 'a.zip']])).status).toBe(201);
    expect(fake.violations.join()).toMatch(/check 27.*retried after 413/);
  });

  it('flags an on_success artifact uploaded by a failed job', async () => {
    await pipeline([{ name: 'build', script: ['make'], artifacts: { paths: ['out/'] } }]);
    const build = await takeJob();
    await upload(build, [['file', 'x', 'a.zip']]);
    await putJob(build, { state: 'failed', failure_reason: 'script_failure', exit_code: 2, output: EMPTY_OUTPUT });
    expect(fake.violations.join()).toMatch(/check 26.*when: on_success.*ended failed/);
  });
});

describe('git over smart HTTP', () => {
  const gitEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' };
  const git = (args: string[], cwd = work) => run('git', args, { cwd, env: gitEnv });

  it('serves the refspecs of the payload to the running job, honouring depth', async () => {
    const { pipeline: p } = await pipeline([{ name: 'a', script: ['true'], git_depth: 5 }]);
    const job = await takeJob();
    const dir = join(work, 'src');
    await git(['init', '-q', dir]);
    await git(['remote', 'add', 'origin', job.git_info.repo_url], dir);
    await git(['fetch', '-q', 'origin', ...job.git_info.refspecs, '--depth', '5'], dir);
    await git(['checkout', '-q', '-f', job.git_info.sha], dir);
    expect(await readFile(join(dir, 'src/a.txt'), 'utf8')).toBe('a\n');
    const { stdout } = await git(['rev-parse', `refs/pipelines/${p.id}`], dir);
    expect(stdout.trim()).toBe(p.sha);
    expect(fake.violations).toEqual([]);
    const dir2 = join(work, 'full');
    await git(['clone', '-q', job.git_info.repo_url, dir2]);
    expect(fake.violations.join()).toMatch(/check 29.*without depth; git_info.depth is 5/);
  });

  it('refuses missing or wrong credentials with 401', async () => {
    const { project } = await pipeline([{ name: 'a', script: ['true'] }]);
    const job = await takeJob();
    await expect(git(['clone', '-q', project.httpUrl, join(work, 'a')])).rejects.toThrow();
    expect(fake.violations).toEqual([]);
    const wrong = project.httpUrl.replace('http://', 'http://gitlab-ci-token:glcbt-wrong@');
    await expect(git(['clone', '-q', wrong, join(work, 'b')])).rejects.toThrow();
    expect(fake.takeViolations().join()).toMatch(/check 29.*Basic auth/);
    await putJob(job, { state: 'success', output: EMPTY_OUTPUT });
    const finished = project.httpUrl.replace('http://', `http://gitlab-ci-token:${job.token}@`);
    await expect(git(['clone', '-q', finished, join(work, 'c')])).rejects.toThrow();
    const res = await fetch(`${project.httpUrl}/info/refs?service=git-upload-pack`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="GitLab"');
  });

  it('inflates gzip request bodies for http-backend', async () => {
    const { pipeline: p } = await pipeline([{ name: 'a', script: ['true'], git_depth: 1 }]);
    const job = await takeJob();
    const pkt = (s: string) => (s.length + 4).toString(16).padStart(4, '0') + s;
    const body = gzipSync(Buffer.from(`${pkt(`want ${p.sha}\n`)}${pkt('deepen 1\n')}0000${pkt('done\n')}`));
    const res = await fetch(`${fake.url}/group/app.git/git-upload-pack`, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${Buffer.from(`gitlab-ci-token:${job.token}`).toString('base64')}`,
        'Content-Type': 'application/x-git-upload-pack-request',
        'Content-Encoding': 'gzip',
      },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-git-upload-pack-result');
    expect(Buffer.from(await res.arrayBuffer()).includes('PACK')).toBe(true);
    expect(fake.violations).toEqual([]);
  });
});
