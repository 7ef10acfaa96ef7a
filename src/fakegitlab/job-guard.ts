// Checks shared by every /jobs/:id* endpoint: authentication as Rails does it (403 for an unknown job or
// a wrong token, 403 + Job-Status for a job that is not running), and the protocol-order checks that
// depend on what the job saw before (checks 4, 7, 8, 14, 18, 20).
import type { IncomingMessage } from 'node:http';
import type { FakeContext } from './context.js';
import { header, HttpError, messageBody } from './http-util.js';
import type { JobRecord } from './records.js';

export type JobCallKind = 'put-running' | 'put-final' | 'put-other' | 'patch' | 'upload';

export function findJob(ctx: FakeContext, id: string | undefined): JobRecord {
  const job = ctx.ci.jobs.get(Number(id));
  // Rails answers 403, not 404, so that a runner stops working on a job that vanished.
  if (!job) throw new HttpError(403, messageBody(403, 'Forbidden'));
  return job;
}

export function jobStatusHeaders(ctx: FakeContext, job: JobRecord): Record<string, string> {
  // With two-phase commit an assigned job is still `pending` in GitLab.
  return { 'Job-Status': job.state };
}

/** Check 8: runner or registration tokens never authenticate job calls. */
export function checkNoRunnerToken(ctx: FakeContext, req: IncomingMessage, url: URL, bodyToken: string | undefined, where: string): void {
  const candidates: Array<[string, string | undefined]> = [
    ['JOB-TOKEN header', header(req, 'job-token')],
    ['RUNNER-TOKEN header', header(req, 'runner-token')],
    ['PRIVATE-TOKEN header', header(req, 'private-token')],
    ['body token', bodyToken],
    ['query token', url.searchParams.get('token') ?? undefined],
  ];
  const auth = header(req, 'authorization');
  if (auth) candidates.push(['Authorization header', auth.replace(/^(Bearer|Basic)\s+/i, '')]);
  for (const [where2, value] of candidates) {
    if (value && ctx.runners.isRunnerToken(value)) {
      ctx.violations.add(8, `${where}: the runner token was sent as ${where2}; only the job token may authenticate job calls`);
    }
  }
}

export function requireJobToken(ctx: FakeContext, job: JobRecord, token: string | undefined, where: string): void {
  if (token === job.token) return;
  ctx.violations.add(7, `${where}: job ${job.id} called ${token ? 'with a token that is not its job token' : 'without a job token'}`);
  throw new HttpError(403, messageBody(403, 'Forbidden'), jobStatusHeaders(ctx, job));
}

/** Order checks for a call authenticated as this job. */
export function noteJobCall(ctx: FakeContext, job: JobRecord, kind: JobCallKind, where: string): void {
  const now = ctx.clock.now();
  if (job.servedNonJson) {
    ctx.violations.add(4, `${where}: job ${job.id} was served with a non-JSON Content-Type; the runner must reject it`);
  }
  if (!job.acked && kind !== 'put-running') {
    ctx.violations.add(7, `${where}: job ${job.id}'s first call must be PUT state=running (the acknowledgement)`);
  }
  if (job.final200At !== undefined) {
    ctx.violations.add(18, `${where}: job ${job.id} got traffic after its final PUT was answered 200`);
    return;
  }
  if (job.abortedAt !== undefined) {
    if (kind === 'patch' && ++job.patchesAfterAbort > 1) {
      ctx.violations.add(20, `job ${job.id}: more than one PATCH after 403 / Job-Status canceled|failed`);
    } else if (kind.startsWith('put') && ++job.putsAfterAbort > 1) {
      ctx.violations.add(20, `job ${job.id}: more than one PUT after 403 / Job-Status canceled|failed`);
    } else if (kind === 'upload') {
      // Soft: an upload already under way when the 403 arrived may still land here.
      ctx.violations.warn(20, `job ${job.id}: artifact upload after the job was aborted (403 / Job-Status canceled|failed)`);
    }
    return;
  }
  if (ctx.ci.isActive(job) && job.lastContactAt !== undefined && kind !== 'upload') {
    const limit = ctx.opts.keepAliveMs + job.intervalS * 1000 + 5000;
    // Silence while GitLab itself was unavailable (an injected outage) is not the runner's.
    const gap = now - Math.max(job.lastContactAt, ctx.faults.lastOutageEndedAt);
    if (gap > limit) {
      ctx.violations.add(14, `job ${job.id}: ${Math.round(gap / 1000)} s without a successful PATCH or PUT (keep-alive due every ~${ctx.opts.keepAliveMs / 1000} s plus one tick)`);
    }
  }
}

/** 403 + Job-Status when the job is not running/canceling (two-phase: an assigned pending job is fine). */
export function requireProcessing(ctx: FakeContext, job: JobRecord, allowAwaitingAck: boolean): void {
  if (ctx.ci.isActive(job)) return;
  if (allowAwaitingAck && job.state === 'pending' && job.awaitingAck) return;
  throw new HttpError(403, messageBody(403, 'Forbidden - Job is not running'), jobStatusHeaders(ctx, job));
}

/** After 403, or Job-Status canceled/failed on a non-final answer, the runner must stop (check 20). */
export function markAbortIfNeeded(ctx: FakeContext, job: JobRecord, status: number): void {
  if (job.abortedAt !== undefined || job.final200At !== undefined) return;
  if (status === 403 || job.state === 'canceled' || job.state === 'failed') job.abortedAt = ctx.clock.now();
}
