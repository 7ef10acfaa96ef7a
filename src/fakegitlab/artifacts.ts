// Artifacts (docs/gitlab-protocol.md §5): multipart upload with exactly one `file` part (check 26) and retry rules
// (check 27); download for dependencies with the running job's token (check 28), optionally through a
// 302 to a local "object storage" URL as direct_download does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import busboy from 'busboy';
import type { FakeContext, Route } from './context.js';
import { header, HttpError, messageBody, randomToken, sendEmpty, sendJson, writeHead } from './http-util.js';
import { checkNoRunnerToken, findJob, noteJobCall, requireJobToken, requireProcessing } from './job-guard.js';
import type { JobRecord } from './records.js';

const TYPES = ['archive', 'metadata', 'trace', 'junit', 'dotenv', 'cobertura', 'codequality', 'sast', 'terraform', 'coverage_report'];
const FORMATS = ['zip', 'gzip', 'raw'];

export const artifactRoutes: Route[] = [
  { method: 'POST', pattern: /^\/api\/v4\/jobs\/(\d+)\/artifacts$/, handler: handleUpload },
  { method: 'GET', pattern: /^\/api\/v4\/jobs\/(\d+)\/artifacts$/, handler: handleDownload },
  { method: 'GET', pattern: /^\/__objectstore\/([A-Za-z0-9]+)$/, handler: handleObject },
];

interface Part {
  name: string;
  filename?: string;
  bytes: Buffer;
}

async function handleUpload(ctx: FakeContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL): Promise<void> {
  const job = findJob(ctx, params[0]);
  const where = `POST /jobs/${job.id}/artifacts`;
  checkNoRunnerToken(ctx, req, url, undefined, where);
  requireJobToken(ctx, job, header(req, 'job-token') ?? url.searchParams.get('token') ?? undefined, where);
  noteJobCall(ctx, job, 'upload', where);
  requireProcessing(ctx, job, false);

  const type = url.searchParams.get('artifact_type') ?? 'archive';
  const attempts = job.uploadAttempts.get(type) ?? { statuses: [] };
  job.uploadAttempts.set(type, attempts);
  checkRetry(ctx, job, type, attempts.statuses, where);
  const answer = (status: number, body: unknown): void => {
    attempts.statuses.push(status);
    sendJson(res, status, body);
  };

  if (!/^multipart\/form-data\b/i.test(header(req, 'content-type') ?? '')) {
    ctx.violations.add(26, `${where}: Content-Type must be multipart/form-data`);
    await drain(req);
    return answer(400, { error: 'file is missing' });
  }
  const injected = ctx.faults.artifactUpload.take(job.id);
  if (injected !== undefined) {
    await drain(req);
    return answer(injected, messageBody(injected, 'Injected fault'));
  }
  const parsed = await parseMultipart(req, ctx.opts.maxArtifactBytes);
  if (parsed.tooBig) return answer(413, messageBody(413, 'Request Entity Too Large'));

  const parts = parsed.parts;
  if (parts.length !== 1 || parts[0]?.name !== 'file' || parts[0].filename === undefined) {
    const seen = parts.map((p) => `${p.name}${p.filename === undefined ? '' : ' (file)'}`).join(', ');
    ctx.violations.add(26, `${where}: upload must be exactly one multipart file part named "file"; got: ${seen || 'none'}`);
  }
  const file = parts.find((p) => p.name === 'file' && p.filename !== undefined);
  if (!file) return answer(400, { error: 'file is missing' });
  const fields = new Map(parts.filter((p) => p.filename === undefined).map((p) => [p.name, p.bytes.toString('utf8')]));
  // Grape treats query and form fields alike.
  const format = url.searchParams.get('artifact_format') ?? fields.get('artifact_format') ?? 'zip';
  const realType = url.searchParams.get('artifact_type') ?? fields.get('artifact_type') ?? 'archive';
  if (!TYPES.includes(realType) || !FORMATS.includes(format)) {
    ctx.violations.add(26, `${where}: artifact_type=${realType} artifact_format=${format} is not valid`);
    return answer(400, { error: 'artifact_type or artifact_format does not have a valid value' });
  }
  const entries = job.payload?.artifacts ?? [];
  if (!entries.some((e) => e.artifact_type === realType && e.artifact_format === format)) {
    ctx.violations.add(26, `${where}: no artifacts[] entry of the job has artifact_type=${realType} and artifact_format=${format}`);
  }
  if (attempts.statuses.includes(201)) ctx.violations.add(26, `${where}: artifact ${realType} uploaded twice`);
  const expireIn = url.searchParams.get('expire_in') ?? fields.get('expire_in');
  job.artifacts = job.artifacts.filter((a) => a.type !== realType);
  job.artifacts.push({
    type: realType,
    format,
    filename: file.filename ?? 'artifacts.zip',
    ...(expireIn ? { expireIn } : {}),
    bytes: file.bytes,
    uploadedAt: ctx.clock.now(),
  });
  answer(201, '201');
}

/** Check 27: 403/413 are final; 503 is tried up to 6 times, other errors up to 3. */
function checkRetry(ctx: FakeContext, job: JobRecord, type: string, prev: number[], where: string): void {
  const last = prev[prev.length - 1];
  if (last === undefined || last === 201) return;
  if (last === 403 || last === 413) {
    ctx.violations.add(27, `${where}: ${type} upload retried after ${last}, which is final`);
    return;
  }
  const max = prev.every((s) => s === 503) ? 6 : 3;
  if (prev.length >= max) ctx.violations.add(27, `${where}: ${type} upload tried ${prev.length + 1} times (at most ${max})`);
}

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.resume();
  });
}

function parseMultipart(req: IncomingMessage, maxBytes: number): Promise<{ parts: Part[]; tooBig: boolean }> {
  return new Promise((resolve, reject) => {
    const parts: Part[] = [];
    let tooBig = false;
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: maxBytes } });
    } catch (e) {
      reject(new HttpError(400, { error: `bad multipart body: ${(e as Error).message}` }));
      return;
    }
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () => (tooBig = true));
      stream.on('end', () => parts.push({ name, filename: info.filename ?? '', bytes: Buffer.concat(chunks) }));
    });
    bb.on('field', (name, value) => parts.push({ name, bytes: Buffer.from(value) }));
    bb.on('close', () => resolve({ parts, tooBig }));
    bb.on('error', (e) => {
      req.unpipe(bb);
      req.resume();
      reject(new HttpError(400, { error: `bad multipart body: ${(e as Error).message}` }));
    });
    req.pipe(bb);
  });
}

async function handleDownload(ctx: FakeContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL): Promise<void> {
  const where = `GET /jobs/${params[0]}/artifacts`;
  const injected = ctx.faults.artifactDownload.take(Number(params[0]));
  if (injected !== undefined) return sendJson(res, injected, messageBody(injected, 'Injected fault'));
  const token = header(req, 'job-token') ?? url.searchParams.get('token') ?? url.searchParams.get('job_token') ?? undefined;
  checkNoRunnerToken(ctx, req, url, undefined, where);
  if (!token) throw new HttpError(401, messageBody(401, 'Unauthorized'), {}, { check: 28, message: `${where}: no JOB-TOKEN` });
  const consumer = ctx.ci.jobByToken(token);
  if (!consumer) throw new HttpError(401, messageBody(401, 'Unauthorized'), {}, { check: 28, message: `${where}: JOB-TOKEN is no job's token` });
  if (!ctx.ci.isActive(consumer)) {
    throw new HttpError(403, messageBody(403, 'Forbidden'), {}, { check: 28, message: `${where}: job ${consumer.id} is not running` });
  }
  const target = ctx.ci.jobs.get(Number(params[0]));
  if (!target) return sendJson(res, 404, messageBody(404, 'Not found'));
  if (target.projectId !== consumer.projectId) return sendJson(res, 403, messageBody(403, 'Forbidden'));
  checkDependencyDownload(ctx, consumer, target, url, where);

  const archive = target.artifacts.find((a) => a.type === 'archive');
  if (!archive) return sendJson(res, 404, messageBody(404, 'Not found'));
  if (url.searchParams.get('direct_download') === 'true' && ctx.opts.directDownloadRedirect) {
    const key = randomToken(32);
    ctx.objectStore.set(key, { jobId: target.id, type: 'archive' });
    return sendEmpty(res, 302, { Location: `${ctx.baseUrl()}/__objectstore/${key}` });
  }
  sendBytes(res, archive.bytes, archive.filename);
}

/** Checks 7 and 28 from the consuming job's point of view. */
function checkDependencyDownload(ctx: FakeContext, consumer: JobRecord, target: JobRecord, url: URL, where: string): void {
  if (!consumer.acked) ctx.violations.add(7, `${where}: job ${consumer.id} downloaded artifacts before PUT state=running`);
  const deps = consumer.payload?.dependencies ?? [];
  const dep = deps.find((d) => d.id === target.id);
  if (!dep) ctx.violations.add(28, `${where}: job ${target.id} is not among job ${consumer.id}'s dependencies`);
  else if (!dep.artifacts_file) ctx.violations.add(28, `${where}: dependency ${target.id} has no artifacts_file; it must not be fetched`);
  const tries = consumer.downloads.get(target.id) ?? 0;
  consumer.downloads.set(target.id, tries + 1);
  if (tries === 0 && url.searchParams.get('direct_download') !== 'true') {
    ctx.violations.add(28, `${where}: the first download attempt must send direct_download=true`);
  }
  if (/section_start:\d+:step_script/.test(consumer.trace.toString('latin1'))) {
    ctx.violations.add(28, `${where}: job ${consumer.id} fetched dependency artifacts after step_script output began`);
  }
}

async function handleObject(ctx: FakeContext, _req: IncomingMessage, res: ServerResponse, params: string[]): Promise<void> {
  const ref = ctx.objectStore.get(params[0] ?? '');
  const archive = ref && ctx.ci.jobs.get(ref.jobId)?.artifacts.find((a) => a.type === ref.type);
  if (!archive) return sendJson(res, 404, messageBody(404, 'Not found'));
  sendBytes(res, archive.bytes, archive.filename);
}

function sendBytes(res: ServerResponse, bytes: Buffer, filename: string): void {
  writeHead(res, 200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': bytes.length,
    'Content-Disposition': `attachment; filename="${filename.replace(/"/g, '')}"`,
  });
  res.end(bytes);
}
