import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobArtifact, JobPayload, JobPlan } from '../../../src/core/index.js';
import { buildPlan } from '../../../src/jobs/index.js';
import { jobArtifact } from '../../helpers/job-payload.js';
import { context, FakeGitLab, JOB_TOKEN, payload, runStage, tempDir, type RecordedRequest, removeTempDirs } from './helpers.js';

afterAll(removeTempDirs);

describe('artifacts over HTTP', () => {
  let root: string;
  let gl: FakeGitLab;
  let n = 0;

  beforeAll(async () => {
    root = tempDir();
    gl = new FakeGitLab(root);
    await gl.start();
  });
  afterAll(async () => gl.stop());
  beforeEach(() => {
    gl.requests.length = 0;
  });

  function plan(over: Partial<JobPayload>): JobPlan {
    const base = payload(gl.url, 'f'.repeat(40));
    const job: JobPayload = { ...base, ...over, variables: [...base.variables, { key: 'GIT_STRATEGY', value: 'none' }] };
    return buildPlan(job, context(root, gl.url, { buildsDir: join(root, `b${n++}`) }));
  }

  async function prepared(over: Partial<JobPayload>): Promise<JobPlan> {
    const p = plan(over);
    for (const s of p.prepare) expect((await runStage(s, root)).code).toBe(0);
    return p;
  }

  function uploads(): RecordedRequest[] {
    return gl.requests.filter((r) => r.method === 'POST');
  }

  function zipEntries(data: Buffer): string[] {
    const file = join(root, `recv-${n++}.zip`);
    writeFileSync(file, data);
    return execFileSync('zipinfo', ['-1', file], { encoding: 'utf8' }).trim().split('\n').sort();
  }

  const archive: JobArtifact = jobArtifact({
    name: 'my-$CI_PROJECT_ID',
    paths: ['dist/**/*.js', 'report.txt', 'missing/'],
    exclude: ['dist/skip/**'],
    when: 'on_success',
    expire_in: '1 week',
    artifact_type: 'archive',
    artifact_format: 'zip',
  });
  const junit: JobArtifact = jobArtifact({
    name: 'junit.xml',
    paths: ['junit.xml'],
    when: 'always',
    expire_in: '1 week',
    artifact_type: 'junit',
    artifact_format: 'gzip',
  });

  function writeBuildOutput(dir: string): void {
    mkdirSync(join(dir, 'dist', 'a', 'b'), { recursive: true });
    mkdirSync(join(dir, 'dist', 'skip'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'top.js'), '1');
    writeFileSync(join(dir, 'dist', 'a', 'b', 'deep.js'), '2');
    writeFileSync(join(dir, 'dist', 'a', 'b', 'deep.css'), 'no');
    writeFileSync(join(dir, 'dist', 'skip', 'gone.js'), 'no');
    writeFileSync(join(dir, 'report.txt'), 'r');
    writeFileSync(join(dir, 'junit.xml'), '<testsuites/>');
  }

  it('uploads each matching entry as one multipart part `file` with the right query', async () => {
    gl.artifacts = (_req, res) => void res.writeHead(201, { 'Content-Type': 'application/json' }).end('{}');
    const p = await prepared({ artifacts: [archive, junit] });
    writeBuildOutput(p.projectDir);
    expect(p.onSuccess.map((s) => s.name)).toEqual(['upload_artifacts_on_success']);
    const run = await runStage(p.onSuccess[0]!, root);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('Uploading artifacts...');
    expect(run.stdout).toContain('dist/**/*.js: found 2 matching artifact files and directories');
    expect(run.stdout).toContain('WARNING: missing/: no matching files');
    expect(run.stdout).toContain('Uploading artifacts as "archive" to coordinator... 201 Created');
    expect(run.stdout).toContain('Uploading artifacts as "junit" to coordinator... 201 Created');

    const [zip, gz] = uploads();
    expect(zip!.url).toBe('/api/v4/jobs/101/artifacts?artifact_format=zip&artifact_type=archive&expire_in=1+week');
    expect(zip!.headers['job-token']).toBe(JOB_TOKEN);
    expect(zip!.parts!.map((x) => [x.field, x.filename])).toEqual([['file', 'my-7.zip']]);
    expect(zipEntries(zip!.parts![0]!.data)).toEqual(['dist/a/b/deep.js', 'dist/top.js', 'report.txt']);

    expect(gz!.url).toBe('/api/v4/jobs/101/artifacts?artifact_format=gzip&artifact_type=junit&expire_in=1+week');
    expect(gz!.parts!.map((x) => [x.field, x.filename])).toEqual([['file', 'junit.xml.gz']]);
    expect(gunzipSync(gz!.parts![0]!.data).toString()).toBe('<testsuites/>');
  });

  it('uploads only `always`/`on_failure` entries after a failure', async () => {
    const p = plan({ artifacts: [archive, junit] });
    expect(p.onFailure.map((s) => s.name)).toEqual(['upload_artifacts_on_failure']);
    expect(p.onFailure[0]!.script).toContain('artifact_type=junit');
    expect(p.onFailure[0]!.script).not.toContain('artifact_type=archive');
  });

  it('retries 503 and succeeds; never retries 403 and fails the stage', async () => {
    let calls = 0;
    gl.artifacts = (_req, res) => void res.writeHead(++calls === 1 ? 503 : 201).end();
    const p = await prepared({ artifacts: [{ ...archive, paths: ['report.txt'], exclude: [] }] });
    writeBuildOutput(p.projectDir);
    const ok = await runStage(p.onSuccess[0]!, root);
    expect(ok.code).toBe(0);
    expect(uploads()).toHaveLength(2);
    expect(ok.stdout).toContain('503 Service Unavailable');

    gl.requests.length = 0;
    gl.artifacts = (_req, res) => void res.writeHead(403).end();
    const denied = await runStage(p.onSuccess[0]!, root);
    expect(denied.code).not.toBe(0);
    expect(uploads()).toHaveLength(1);
    expect(denied.stdout).toContain('403 Forbidden');
  });

  it('reports "No files to upload" without failing when nothing matches', async () => {
    gl.artifacts = (_req, res) => void res.writeHead(201).end();
    const p = await prepared({ artifacts: [{ ...archive, paths: ['nothing-here/'], exclude: [] }] });
    const run = await runStage(p.onSuccess[0]!, root);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('ERROR: No files to upload');
    expect(uploads()).toHaveLength(0);
  });

  it('downloads dependencies (direct_download first, redirect followed without the token) and extracts them', async () => {
    const src = join(root, 'dep-src');
    mkdirSync(join(src, 'out'), { recursive: true });
    writeFileSync(join(src, 'out', 'built.txt'), 'from dep');
    const depZip = join(root, 'dep.zip');
    execFileSync('zip', ['-q', '-r', depZip, 'out'], { cwd: src });
    gl.artifacts = (req, res) => {
      if (req.url === '/api/v4/jobs/55/artifacts?direct_download=true') {
        if (req.headers['job-token'] !== 'dep-token') return void res.writeHead(401).end();
        return void res.writeHead(302, { Location: `${gl.url}/storage/55.zip?X-Amz-Signature=abc` }).end();
      }
      if (req.url.startsWith('/storage/55.zip')) return void res.writeHead(200).end(readFileSync(depZip));
      res.writeHead(404).end();
    };
    const p = plan({
      dependencies: [
        { id: 55, name: 'compile', token: 'dep-token', artifacts_file: { filename: 'artifacts.zip', size: 10 } },
        { id: 56, name: 'no-artifacts', token: 'dep-token' },
      ],
    });
    expect(p.prepare.map((s) => s.name)).toContain('download_artifacts');
    const outs: string[] = [];
    for (const s of p.prepare) {
      const r = await runStage(s, root);
      outs.push(r.stdout + r.stderr);
      expect(r.code, outs.join('')).toBe(0);
    }
    expect(outs.join('')).toContain('Downloading artifacts for compile (55)...');
    expect(outs.join('')).not.toContain('no-artifacts');
    expect(readFileSync(join(p.projectDir, 'out', 'built.txt'), 'utf8')).toBe('from dep');
    const storage = gl.requests.find((r) => r.url.startsWith('/storage/'));
    expect(storage?.headers['job-token']).toBeUndefined();
    expect(existsSync(`${p.projectDir}.tmp/job-token.header`)).toBe(false);
  });

  it('fails download_artifacts on 403 without retrying', async () => {
    gl.artifacts = (_req, res) => void res.writeHead(403).end();
    const p = plan({ dependencies: [{ id: 57, name: 'x', token: 't', artifacts_file: { filename: 'a.zip', size: 1 } }] });
    const codes: number[] = [];
    for (const s of p.prepare) codes.push((await runStage(s, root)).code);
    expect(codes.at(-1)).not.toBe(0);
    expect(gl.requests.filter((r) => r.url.startsWith('/api/v4/jobs/57/'))).toHaveLength(1);
  });
});
