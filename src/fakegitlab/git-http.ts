// Git smart HTTP, served by `git http-backend` as a CGI program. Access needs Basic auth
// `gitlab-ci-token:<token of a running job of that project>` (check 29); fetches must honour
// git_info.depth. Pushing is refused: a runner never pushes.
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { FakeContext, Route } from './context.js';
import { gitEnv } from './git-repo.js';
import { header, readBody, sendJson, writeHead } from './http-util.js';
import type { JobRecord } from './records.js';

export const gitRoutes: Route[] = [{ method: '*', pattern: /^\/(.+?)\.git(\/.*)?$/, handler: handleGit }];

const UNAUTHORIZED_HEADERS = { 'WWW-Authenticate': 'Basic realm="GitLab"' };

async function handleGit(ctx: FakeContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL): Promise<void> {
  const projectPath = params[0] ?? '';
  const rest = params[1] ?? '';
  const where = `${req.method} /${projectPath}.git${rest}`;
  const project = ctx.ci.projectByPath(projectPath);
  const auth = header(req, 'authorization');
  // git probes without credentials first and retries after a 401: not a violation by itself.
  if (!auth) return sendJson(res, 401, { message: 'HTTP Basic: Access denied' }, UNAUTHORIZED_HEADERS);
  const job = authenticate(ctx, auth, project?.id);
  if (!job) {
    ctx.violations.add(29, `${where}: Basic auth must be gitlab-ci-token:<token of a running job of this project>`);
    return sendJson(res, 401, { message: 'HTTP Basic: Access denied' }, UNAUTHORIZED_HEADERS);
  }
  if (rest.endsWith('git-receive-pack') || url.searchParams.get('service') === 'git-receive-pack') {
    ctx.violations.add(29, `${where}: job ${job.id} tried to push`);
    return sendJson(res, 403, { message: 'You are not allowed to push code to this project.' });
  }
  const body = await readBody(req, 256 * 1024 * 1024);
  const encoding = header(req, 'content-encoding');
  if (req.method === 'POST' && rest.endsWith('git-upload-pack')) checkFetchDepth(ctx, job, body, encoding, where);
  await runBackend(ctx, req, res, `/${projectPath}.git${rest}`, url, body, encoding);
}

function authenticate(ctx: FakeContext, auth: string, projectId: number | undefined): JobRecord | undefined {
  const m = /^Basic\s+(.+)$/i.exec(auth);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0 || decoded.slice(0, colon) !== 'gitlab-ci-token') return undefined;
  const job = ctx.ci.jobByToken(decoded.slice(colon + 1));
  if (!job || !ctx.ci.isActive(job) || job.projectId !== projectId) return undefined;
  return job;
}

/** git_info.depth > 0 means `deepen <depth>`; depth 0 means a full fetch (or --unshallow). */
function checkFetchDepth(ctx: FakeContext, job: JobRecord, body: Buffer, encoding: string | undefined, where: string): void {
  let data = body;
  if (encoding === 'gzip') {
    try {
      data = gunzipSync(body);
    } catch {
      return; // http-backend will answer it
    }
  }
  const lines = pktLines(data);
  if (!lines.some((l) => l.startsWith('want '))) return; // ls-refs, or a request without wants
  const depth = job.payload?.git_info.depth ?? 0;
  const deepen = lines.find((l) => /^deepen \d+$/.test(l));
  const asked = deepen === undefined ? undefined : Number(deepen.slice('deepen '.length));
  if (depth > 0 && asked === undefined) ctx.violations.add(29, `${where}: job ${job.id} fetched without depth; git_info.depth is ${depth}`);
  else if (depth > 0 && asked !== depth) {
    ctx.violations.add(29, `${where}: job ${job.id} fetched with depth ${asked}; git_info.depth is ${depth}`);
  } else if (depth === 0 && asked !== undefined && asked < 2147483647) {
    ctx.violations.add(29, `${where}: job ${job.id} fetched with depth ${asked}; git_info.depth is 0 (full)`);
  }
}

/** Payloads of git pkt-lines (4 hex digits of length, including themselves; 0000-0002 are markers). */
function pktLines(data: Buffer): string[] {
  const out: string[] = [];
  let i = 0;
  while (i + 4 <= data.length) {
    const len = Number.parseInt(data.toString('latin1', i, i + 4), 16);
    if (Number.isNaN(len)) break;
    if (len < 4) {
      i += 4;
      continue;
    }
    out.push(data.toString('latin1', i + 4, Math.min(data.length, i + len)).replace(/\n$/, ''));
    i += len;
  }
  return out;
}

function runBackend(
  ctx: FakeContext,
  req: IncomingMessage,
  res: ServerResponse,
  pathInfo: string,
  url: URL,
  body: Buffer,
  encoding: string | undefined,
): Promise<void> {
  const env: Record<string, string> = {
    GIT_PROJECT_ROOT: ctx.reposDir(),
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: pathInfo,
    QUERY_STRING: url.search.replace(/^\?/, ''),
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: header(req, 'content-type') ?? '',
    CONTENT_LENGTH: String(body.length),
    REMOTE_USER: 'gitlab-ci-token',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    // REMOTE_USER would enable receive-pack by default.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'false',
  };
  if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
  const protocol = header(req, 'git-protocol');
  if (protocol) env.HTTP_GIT_PROTOCOL = protocol; // enables protocol v2
  return new Promise((resolve) => {
    const child = spawn('git', ['http-backend'], { env: gitEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let head = Buffer.alloc(0);
    let headersDone = false;
    const stderr: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const split = findHeaderEnd(head);
      if (!split) return;
      headersDone = true;
      const { status, headers } = parseCgiHeaders(head.subarray(0, split.index).toString('latin1'));
      writeHead(res, status, headers);
      res.write(head.subarray(split.index + split.length));
    });
    child.on('error', (e) => {
      ctx.violations.add('internal', `${pathInfo}: could not run git http-backend: ${e.message}`);
      if (!res.headersSent) sendJson(res, 500, { message: '500 git http-backend failed' });
      resolve();
    });
    child.on('close', (code) => {
      if (!headersDone) {
        ctx.logger.warn({ code, stderr: Buffer.concat(stderr).toString('utf8') }, 'git http-backend gave no headers');
        if (!res.headersSent) sendJson(res, 500, { message: '500 git http-backend failed' });
      } else {
        res.end();
      }
      resolve();
    });
    child.stdin.on('error', () => undefined); // the backend may exit before reading everything
    child.stdin.end(body);
  });
}

function findHeaderEnd(buf: Buffer): { index: number; length: number } | undefined {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { index: crlf, length: 4 };
  if (lf >= 0) return { index: lf, length: 2 };
  return undefined;
}

function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 200;
    else headers[name] = value;
  }
  return { status, headers };
}
