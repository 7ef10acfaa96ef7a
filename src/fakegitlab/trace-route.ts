// PATCH /jobs/:id/trace (docs/gitlab-protocol.md §4): appends only at the stored size (else 416 with the stored size),
// with checks 8-12, 24 and 25. Injected statuses and 416s answer before anything is stored.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeContext, Route } from './context.js';
import { header, HttpError, messageBody, readBody, sendEmpty, sendJson } from './http-util.js';
import { checkNoRunnerToken, findJob, jobStatusHeaders, markAbortIfNeeded, noteJobCall, requireJobToken, requireProcessing } from './job-guard.js';
import type { JobRecord } from './records.js';
import { checkOutputLimit, parseContentRange, railsMask, scanForSecrets } from './trace-checks.js';
import type { TracePatchRecord } from './types.js';

const MAX_PATCH = 1024 * 1024;

export const traceRoutes: Route[] = [{ method: 'PATCH', pattern: /^\/api\/v4\/jobs\/(\d+)\/trace$/, handler: handlePatch }];

async function handlePatch(ctx: FakeContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL): Promise<void> {
  const job = findJob(ctx, params[0]);
  const where = `PATCH /jobs/${job.id}/trace`;
  const body = await readBody(req, 64 * MAX_PATCH);
  const record: TracePatchRecord = { at: ctx.clock.now(), start: -1, length: body.length, status: 0 };
  job.patches.push(record);
  try {
    await patch(ctx, job, req, res, url, body, record, where);
  } catch (e) {
    if (e instanceof HttpError) {
      record.status = e.status;
      markAbortIfNeeded(ctx, job, e.status);
    }
    throw e;
  }
}

async function patch(
  ctx: FakeContext,
  job: JobRecord,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  body: Buffer,
  record: TracePatchRecord,
  where: string,
): Promise<void> {
  const token = url.searchParams.get('token') ?? header(req, 'job-token');
  checkNoRunnerToken(ctx, req, url, undefined, where);
  requireJobToken(ctx, job, token ?? undefined, where);
  noteJobCall(ctx, job, 'patch', where);
  requireProcessing(ctx, job, false);

  const rangeHeader = header(req, 'content-range');
  if (rangeHeader === undefined) {
    throw new HttpError(400, messageBody(400, 'Missing header Content-Range'), {}, { check: 9, message: `${where}: no Content-Range header` });
  }
  const range = parseContentRange(rangeHeader);
  record.start = range.start;
  if (!range.wellFormed) {
    ctx.violations.add(9, `${where}: Content-Range "${rangeHeader}" must be a bare "<start>-<end>" (no unit, no total)`);
  } else if (range.end !== range.start + body.length - 1) {
    ctx.violations.add(9, `${where}: Content-Range "${rangeHeader}" does not match a ${body.length}-byte body (end = start + len - 1)`);
  }
  const type = header(req, 'content-type') ?? '';
  if (!/^text\/plain\b/i.test(type)) ctx.violations.add(9, `${where}: Content-Type is "${type}", expected text/plain`);
  if (body.length === 0) ctx.violations.add(10, `${where}: empty PATCH`);
  if (body.length > MAX_PATCH) ctx.violations.add(10, `${where}: PATCH of ${body.length} bytes is over 1 MiB`);
  if (url.searchParams.get('debug_trace') === 'true' && range.start === 0) job.debugTrace = true;

  const reply = (status: number, headers: Record<string, string> = {}): void => {
    record.status = status;
    if (status === 202) job.lastContactAt = ctx.clock.now();
    markAbortIfNeeded(ctx, job, status);
    const all = { ...jobStatusHeaders(ctx, job), ...headers };
    if (status === 202) sendEmpty(res, 202, all);
    else sendJson(res, status, messageBody(status, status === 416 ? 'Range Not Satisfiable' : 'Injected fault'), all);
  };

  const injected = ctx.faults.tracePatch.take(job.id);
  if (injected !== undefined) return reply(injected);
  const stored = job.traceStore.length;
  if (ctx.faults.trace416.take(job.id, (offset) => offset === range.start) !== undefined) {
    job.expectedNextOffset = stored;
    return reply(416, { Range: `0-${stored}` });
  }

  const resuming = job.offsetUnknown === true;
  job.offsetUnknown = false;
  if (range.start !== job.expectedNextOffset && !resuming) {
    ctx.violations.add(
      11,
      `${where}: PATCH starts at ${range.start}, expected ${job.expectedNextOffset} (from the last 202/416 Range); no gaps, overlaps or re-sends`,
    );
  }
  if (range.start !== stored) {
    job.expectedNextOffset = stored;
    return reply(416, { Range: `0-${stored}` });
  }

  scanForSecrets(ctx, job, body);
  job.traceStore.append(railsMask(body, [job.token, ctx.runners.registrationToken]));
  job.expectedNextOffset = job.traceStore.length;
  checkOutputLimit(ctx, job);
  job.intervalS = ctx.faults.traceUpdateIntervalS;
  reply(202, { Range: `0-${job.traceStore.length}`, 'X-GitLab-Trace-Update-Interval': String(job.intervalS) });
}
