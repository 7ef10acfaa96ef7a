// PUT /jobs/:id (docs/gitlab-protocol.md §3): acknowledgement, keep-alive, two-phase commit and the final update with
// checks 7, 15, 16, 17, 18, 21 and 26 (artifact `when` vs outcome). Injected 202s and errors come first.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import type { FakeContext, Route } from './context.js';
import { ALWAYS_ACCEPTED, GITLAB_FAILURE_REASONS, RUNNER_EMITTABLE, storedFailureReason } from './failure-reasons.js';
import { asObject, header, HttpError, optionalString, readJsonObject, sendJson } from './http-util.js';
import {
  checkNoRunnerToken,
  findJob,
  jobStatusHeaders,
  markAbortIfNeeded,
  noteJobCall,
  requireJobToken,
  requireProcessing,
} from './job-guard.js';
import type { JobRecord } from './records.js';
import { checkPatchCadence } from './trace-checks.js';
import type { JobUpdateRecord } from './types.js';

export const jobUpdateRoutes: Route[] = [{ method: 'PUT', pattern: /^\/api\/v4\/jobs\/(\d+)$/, handler: handleUpdate }];

export function traceChecksum(trace: Buffer): string {
  return `crc32:${crc32(trace).toString(16).padStart(8, '0')}`;
}

async function handleUpdate(ctx: FakeContext, req: IncomingMessage, res: ServerResponse, params: string[], url: URL): Promise<void> {
  const job = findJob(ctx, params[0]);
  const where = `PUT /jobs/${job.id}`;
  const body = await readJsonObject(req, where);
  const bodyToken = optionalString(body, 'token');
  const headerToken = header(req, 'job-token');
  checkNoRunnerToken(ctx, req, url, bodyToken, where);
  requireJobToken(ctx, job, bodyToken ?? headerToken, where);
  if (headerToken !== undefined && headerToken !== job.token) requireJobToken(ctx, job, headerToken, where);

  const state = optionalString(body, 'state');
  const output = asObject(body.output);
  const record: JobUpdateRecord = { at: ctx.clock.now(), state: state ?? '', status: 0 };
  if (typeof body.failure_reason === 'string') record.failureReason = body.failure_reason;
  if (typeof body.exit_code === 'number') record.exitCode = body.exit_code;
  if (output) {
    record.output = {};
    if (typeof output.checksum === 'string') record.output.checksum = output.checksum;
    if (typeof output.bytesize === 'number') record.output.bytesize = output.bytesize;
  }
  job.updates.push(record);
  const reply = (status: number, headers: Record<string, string> = {}): void => {
    record.status = status;
    if (status === 200 || status === 202) job.lastContactAt = ctx.clock.now();
    markAbortIfNeeded(ctx, job, status);
    sendJson(res, status, String(status), { ...jobStatusHeaders(ctx, job), ...headers });
  };

  const isFinal = state === 'success' || state === 'failed';
  const kind = state === 'running' ? 'put-running' : isFinal ? 'put-final' : 'put-other';
  if (headerToken !== job.token || bodyToken !== job.token) {
    ctx.violations.add(7, `${where}: PUT must carry the job token both as JOB-TOKEN and as body token`);
  }
  noteJobCall(ctx, job, kind, where);
  if (kind === 'put-running') job.acked = true;

  try {
    requireProcessing(ctx, job, true);
  } catch (e) {
    if (e instanceof HttpError) record.status = e.status;
    markAbortIfNeeded(ctx, job, 403);
    throw e;
  }

  if (job.awaitingAck) {
    // Two-phase commit: `running` commits the assignment; `pending` is a keep-alive.
    if (state === 'running') {
      job.awaitingAck = false;
      ctx.ci.transition(job, 'running');
      return reply(200);
    }
    if (state === 'pending') return reply(200);
    ctx.violations.add(7, `${where}: job ${job.id} is assigned with two-phase commit; expected state=running first, got ${state}`);
    return reply(400);
  }

  switch (state) {
    case 'running':
      return reply(200);
    case 'pending':
      return reply(409); // a manager is attached already
    case 'success':
    case 'failed':
      return finalUpdate(ctx, job, body, state, where, reply);
    default:
      ctx.violations.add(17, `${where}: unknown state "${state ?? ''}"`);
      return reply(400);
  }
}

function finalUpdate(
  ctx: FakeContext,
  job: JobRecord,
  body: Record<string, unknown>,
  state: 'success' | 'failed',
  where: string,
  reply: (status: number, headers?: Record<string, string>) => void,
): void {
  const now = ctx.clock.now();
  checkFinalBody(ctx, job, body, state, where);
  if (job.final202At !== undefined && job.final202IntervalS !== undefined) {
    const gap = now - job.final202At;
    if (gap < job.final202IntervalS * 1000 - 250) {
      ctx.violations.add(18, `${where}: final PUT repeated ${gap} ms after a 202 with X-GitLab-Trace-Update-Interval ${job.final202IntervalS}`);
    }
  }

  const outage = ctx.faults.outageOnFinalPut;
  if (outage) {
    ctx.faults.outageOnFinalPut = undefined;
    ctx.faults.outage = { status: outage.status, untilMs: now + outage.durationMs };
    return reply(outage.status);
  }
  const injected = ctx.faults.finalPut.take(job.id);
  if (injected === 202) {
    // Rails: "accepted, live trace chunks are still being persisted"; the runner waits and repeats.
    const interval = ctx.faults.traceUpdateIntervalS;
    job.final202At = now;
    job.final202IntervalS = interval;
    job.intervalS = interval;
    return reply(202, { 'X-GitLab-Trace-Update-Interval': String(interval) });
  }
  if (injected === 412) {
    // "Trace validation failed": the runner must re-send the whole trace from 0, then PUT again
    // (check 19), so the stored trace starts over.
    job.traceStore.reset();
    job.expectedNextOffset = 0;
    return reply(412);
  }
  if (injected !== undefined) return reply(injected);

  checkArtifactWhen(ctx, job, state, where);
  checkPatchCadence(ctx, job);
  const failureReason = typeof body.failure_reason === 'string' ? body.failure_reason : undefined;
  const exitCode = typeof body.exit_code === 'number' ? body.exit_code : undefined;
  job.final200At = now;
  if (job.state === 'canceling') {
    // Rails turns canceling + success/failed into canceled (docs/gitlab-protocol.md §3.3).
    ctx.ci.transition(job, 'canceled');
  } else if (state === 'success') {
    ctx.ci.transition(job, 'success');
  } else {
    ctx.ci.transition(job, 'failed', {
      failureReason: storedFailureReason(failureReason ?? 'unknown_failure'),
      ...(exitCode === undefined ? {} : { exitCode }),
    });
  }
  reply(200);
}

/** Checks 15, 16, 17 and 21 on a final PUT. */
function checkFinalBody(ctx: FakeContext, job: JobRecord, body: Record<string, unknown>, state: string, where: string): void {
  const output = asObject(body.output);
  const stored = job.traceStore.length;
  const bytesize = output?.bytesize;
  const expectedSum = job.traceStore.checksum;
  if (typeof bytesize !== 'number') {
    ctx.violations.add(15, `${where}: final PUT without output.bytesize`);
  } else if (bytesize !== stored) {
    ctx.violations.add(15, `${where}: final PUT output.bytesize=${bytesize} but ${stored} trace bytes are stored; every byte must be acknowledged first`);
  }
  const sum = output?.checksum;
  if (typeof sum !== 'string') {
    ctx.violations.add(16, `${where}: final PUT without output.checksum`);
  } else if (sum !== expectedSum) {
    ctx.violations.add(16, `${where}: output.checksum ${sum} but the stored trace has ${expectedSum}`);
  }
  if (body.checksum !== undefined && body.checksum !== expectedSum) {
    ctx.violations.add(16, `${where}: top-level checksum ${String(body.checksum)} but the stored trace has ${expectedSum}`);
  }
  const reason = body.failure_reason;
  if (state === 'success') {
    if (reason !== undefined) ctx.violations.add(17, `${where}: success must not carry failure_reason (got ${String(reason)})`);
    if (body.exit_code !== undefined) ctx.violations.add(17, `${where}: success must not carry exit_code`);
    if (job.state === 'canceling') ctx.violations.add(21, `${where}: job ${job.id} was canceling; the final PUT must be failed`);
    return;
  }
  const offered = job.payload?.features?.failure_reasons ?? GITLAB_FAILURE_REASONS;
  if (typeof reason !== 'string' || reason === '') {
    ctx.violations.add(17, `${where}: failed final PUT without failure_reason`);
  } else if (!(offered.includes(reason) || ALWAYS_ACCEPTED.includes(reason)) || !RUNNER_EMITTABLE.has(reason)) {
    ctx.violations.add(17, `${where}: failure_reason "${reason}" is not one a runner may send given features.failure_reasons`);
  }
  if (body.exit_code === 0) ctx.violations.add(17, `${where}: exit_code 0 must be omitted`);
  if (body.exit_code !== undefined && (typeof body.exit_code !== 'number' || !Number.isInteger(body.exit_code))) {
    ctx.violations.add(17, `${where}: exit_code must be an integer`);
  }
}

/** Check 26: uploads happen only for artifacts[] entries whose `when` matches the outcome. */
function checkArtifactWhen(ctx: FakeContext, job: JobRecord, state: 'success' | 'failed', where: string): void {
  const entries = job.payload?.artifacts ?? [];
  const outcome = job.state === 'canceling' ? 'failed' : state;
  for (const a of job.artifacts) {
    const when = entries.find((e) => e.artifact_type === a.type)?.when ?? 'on_success';
    if ((when === 'on_success' && outcome !== 'success') || (when === 'on_failure' && outcome !== 'failed')) {
      ctx.violations.add(26, `${where}: artifact ${a.type} (when: ${when}) was uploaded but the job ended ${outcome}`);
    }
  }
}
