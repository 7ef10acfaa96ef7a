// Real parts for the stage-script tests: a bare git repo served by `git http-backend` behind Basic auth,
// a GitLab artifacts endpoint (multipart upload, zip download), and a way to run a stage with bash.

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import busboy from 'busboy';
import type { JobPayload, Stage } from '../../../src/core/index.js';
import type { PlanContext } from '../../../src/jobs/index.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { testToken } from '../../helpers/tokens.js';

export const JOB_TOKEN = testToken('glcbt-64_');

const created: string[] = [];

export function tempDir(prefix = 'fr-jobs-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}

/** Removes every directory tempDir made in this test file. */
export function removeTempDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: gitEnv(cwd) }).trim();
}

function gitEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@example.com',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@example.com',
  };
}

/** A bare repo `<root>/grp/proj.git` with two commits on main and refs/pipelines/1 at the last one. */
export function makeRepo(root: string): { bare: string; sha: string; firstSha: string } {
  const work = join(root, 'work');
  mkdirSync(work, { recursive: true });
  git(work, 'init', '-q', '-b', 'main');
  writeFileSync(join(work, 'README.md'), 'hello\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'first');
  const firstSha = git(work, 'rev-parse', 'HEAD');
  writeFileSync(join(work, 'app.txt'), 'v2\n');
  writeFileSync(join(work, '.gitignore'), 'ignored.log\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'second');
  const sha = git(work, 'rev-parse', 'HEAD');
  const bare = join(root, 'srv', 'grp', 'proj.git');
  mkdirSync(join(root, 'srv', 'grp'), { recursive: true });
  execFileSync('git', ['clone', '-q', '--bare', work, bare], { env: gitEnv(root) });
  git(bare, 'update-ref', 'refs/pipelines/1', sha);
  return { bare, sha, firstSha };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** Multipart parts of an upload: field name, file name, bytes. */
  parts?: Array<{ field: string; filename: string; data: Buffer }>;
}

export type ArtifactHandler = (req: RecordedRequest, res: ServerResponse) => boolean | void;

/** One HTTP server: `/grp/*.git/*` → git http-backend (Basic gitlab-ci-token:<JOB_TOKEN>), anything else →
 *  the scripted artifact handler. Records every request. */
export class FakeGitLab {
  readonly requests: RecordedRequest[] = [];
  readonly gitAuth: string[] = [];
  artifacts: ArtifactHandler = (_req, res) => void res.writeHead(404).end();
  private server!: Server;
  url = '';

  constructor(private readonly projectRoot: string) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    this.requests.push(rec);
    if (rec.url.startsWith('/grp/')) return this.git(req, res);
    if (req.headers['content-type']?.startsWith('multipart/form-data')) rec.parts = await parseMultipart(req);
    else req.resume();
    this.artifacts(rec, res);
  }

  private git(req: IncomingMessage, res: ServerResponse): void {
    const auth = req.headers.authorization;
    const decoded = auth?.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : undefined;
    if (decoded !== undefined) this.gitAuth.push(decoded);
    if (decoded !== `gitlab-ci-token:${JOB_TOKEN}`) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="GitLab"' }).end();
      req.resume();
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: this.projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: u.pathname,
        QUERY_STRING: u.search.replace(/^\?/, ''),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_USER: 'gitlab-ci-token',
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(cgi.stdin);
    const chunks: Buffer[] = [];
    cgi.stdout.on('data', (c: Buffer) => chunks.push(c));
    cgi.on('close', () => {
      const out = Buffer.concat(chunks);
      const split = out.indexOf('\r\n\r\n');
      const head = out.subarray(0, split).toString();
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else headers[k] = v;
      }
      res.writeHead(status, headers).end(out.subarray(split + 4));
    });
  }
}

function parseMultipart(req: IncomingMessage): Promise<NonNullable<RecordedRequest['parts']>> {
  return new Promise((resolve, reject) => {
    const parts: NonNullable<RecordedRequest['parts']> = [];
    const bb = busboy({ headers: req.headers });
    bb.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => parts.push({ field, filename: info.filename ?? '', data: Buffer.concat(chunks) }));
    });
    bb.on('field', (field, value) => parts.push({ field, filename: '', data: Buffer.from(value) }));
    bb.on('close', () => resolve(parts));
    bb.on('error', reject);
    req.pipe(bb);
  });
}

export interface StageRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a stage exactly as an executor does: the script on stdin of `bash --noprofile --norc -s`. */
export function runStage(stage: Stage, home: string): Promise<StageRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-s'], {
      env: { PATH: process.env.PATH, HOME: home, GIT_CONFIG_NOSYSTEM: '1', LANG: 'C.UTF-8' },
      cwd: home,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(stage.script);
  });
}

export function context(root: string, gitlabUrl: string, over: Partial<PlanContext> = {}): PlanContext {
  return {
    buildsDir: join(root, 'builds'),
    cacheDir: join(root, 'cache'),
    gitlabUrl,
    runner: {
      version: '0.1.0',
      revision: 'deadbeef',
      shortToken: 't0k3n123',
      executorName: 'test',
      concurrentId: 0,
      platform: 'linux',
      arch: 'amd64',
    },
    sharedEnvironment: false,
    ...over,
  };
}

export function payload(gitlabUrl: string, sha: string, over: Partial<JobPayload> = {}): JobPayload {
  const base = jobPayload({
    id: 101,
    token: JOB_TOKEN,
    allow_git_fetch: true,
    job_info: { id: 101, name: 'build', stage: 'test', project_id: 7, project_full_path: 'grp/proj' },
    git_info: {
      repo_url: `${gitlabUrl.replace('://', `://gitlab-ci-token:${JOB_TOKEN}@`)}/grp/proj.git`,
      ref: 'main',
      sha,
      ref_type: 'branch',
      refspecs: ['+refs/pipelines/1:refs/pipelines/1', '+refs/heads/main:refs/remotes/origin/main'],
      depth: 1,
    },
    runner_info: { timeout: 600 },
    variables: [
      { key: 'CI_JOB_TOKEN', value: JOB_TOKEN, masked: true, public: false },
      { key: 'CI_PROJECT_ID', value: '7', public: true },
    ],
    steps: [{ name: 'script', script: ['echo hello'], when: 'on_success' }],
  });
  return { ...base, ...over };
}
