// POST /jobs/request (docs/gitlab-protocol.md §2): Rails' queue-value short cut, Workhorse long polling, feature checks
// at assignment (runner_unsupported), and the request-shape checks 1, 2, 3, 5 (soft) and 6.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FakeContext, Route } from './context.js';
import {
  asObject,
  HttpError,
  messageBody,
  optionalString,
  readJsonObject,
  requireString,
  sendEmpty,
  sendJson,
  writeHead,
} from './http-util.js';
import { buildPayload, requiredFeatures } from './payload.js';
import type { JobRecord, PollState, RunnerRecord } from './records.js';

const WHERE = 'POST /jobs/request';
const REQUIRED_NETWORK_FEATURES = ['cancelable', 'cancel_gracefully', 'trace_checksum', 'trace_size', 'trace_reset'];
const SKIP_AFTER_403_MS = 60 * 60 * 1000;
const IN_FLIGHT_MS = 1000;

export const jobRequestRoutes: Route[] = [{ method: 'POST', pattern: /^\/api\/v4\/jobs\/request$/, handler: handleJobRequest }];

async function handleJobRequest(ctx: FakeContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJsonObject(req, WHERE);
  const token = requireString(body, 'token', WHERE);
  const now = ctx.clock.now();
  const poll = ctx.runners.poll(token);
  // Workhorse marks every answer when long polling is enabled.
  const polling: Record<string, string> = ctx.opts.longPollMs > 0 ? { 'Gitlab-Ci-Builds-Polling': 'yes' } : {};

  if (poll.consecutive403 >= 3 && poll.last403At !== undefined && now - poll.last403At < SKIP_AFTER_403_MS) {
    ctx.violations.add(6, `${WHERE}: token polled again ${Math.round((now - poll.last403At) / 1000)} s after 3 consecutive 403s (must wait 60 min)`);
  }
  if (poll.last204At !== undefined && !poll.last204WasLongPoll && now - poll.last204At < 0.9 * ctx.opts.checkIntervalMs) {
    ctx.violations.warn(5, `${WHERE}: polled ${now - poll.last204At} ms after a 204 (check_interval ${ctx.opts.checkIntervalMs} ms)`);
  }
  poll.last204At = undefined;

  const fault = ctx.faults.takeJobRequestError();
  if (fault) {
    const headers: Record<string, string> = { ...polling };
    if (fault.retryAfterS !== undefined) headers['Retry-After'] = String(fault.retryAfterS);
    if (fault.rateLimitResetTime !== undefined) headers['RateLimit-ResetTime'] = fault.rateLimitResetTime;
    sendJson(res, fault.status, messageBody(fault.status, 'Injected fault'), headers);
    return;
  }

  const runner = ctx.runners.authenticate(token, WHERE);
  if (!runner) {
    poll.consecutive403++;
    poll.last403At = now;
    throw new HttpError(403, messageBody(403, 'Forbidden'), polling);
  }
  poll.consecutive403 = 0;

  const lastUpdate = optionalString(body, 'last_update');
  checkLastUpdate(ctx, poll, lastUpdate, now);
  const systemId = optionalString(body, 'system_id');
  const info = asObject(body.info);
  const features = asObject(info?.features) ?? {};
  checkRequestShape(ctx, systemId, info, features);
  ctx.runners.heartbeat(runner, systemId, features);

  const noJob = (value: string | undefined, longPoll = false): void => {
    const headers: Record<string, string> = { ...polling };
    if (value !== undefined) {
      headers['X-GitLab-Last-Update'] = value;
      const latest = poll.lastUpdates[poll.lastUpdates.length - 1];
      if (latest?.value !== value) poll.lastUpdates.push({ value, since: ctx.clock.now(), answersBefore: poll.answers ?? 0 });
    }
    poll.answers = (poll.answers ?? 0) + 1;
    poll.last204At = ctx.clock.now();
    // Every answer carries Gitlab-Ci-Builds-Polling when long polling is on: a runner may re-poll at once.
    poll.last204WasLongPoll = longPoll || ctx.opts.longPollMs > 0;
    sendEmpty(res, 204, headers);
  };

  if (runner.paused) return noJob(runner.queueValue);
  if (lastUpdate !== undefined && lastUpdate === runner.queueValue) {
    if (ctx.opts.longPollMs > 0) {
      // Workhorse watches the queue key; a change seen while watching, or the timeout, is a bare 204.
      await waitForQueueChange(ctx, runner, lastUpdate, res);
      return noJob(undefined, true);
    }
    return noJob(lastUpdate);
  }

  const newUpdate = runner.queueValue;
  const job = assignNext(ctx, runner, features, systemId);
  if (!job) return noJob(newUpdate);

  const sessionUrl = optionalString(asObject(body.session) ?? {}, 'url');
  const project = ctx.ci.projects.get(job.projectId)!;
  job.payload = buildPayload({
    job,
    pipeline: ctx.ci.pipelines.get(job.pipelineId)!,
    project,
    runner,
    dependencies: job.dependencyIds.map((id) => ctx.ci.jobs.get(id)!),
    baseUrl: ctx.baseUrl(),
    defaultGitDepth: ctx.opts.defaultGitDepth,
    defaultTimeoutS: ctx.opts.defaultTimeoutS,
    now: ctx.clock.now(),
    ...(sessionUrl === undefined ? {} : { sessionUrl }),
    queueSize: ctx.ci.queue().length,
    projectRunningCount: [...ctx.ci.jobs.values()].filter((j) => j.projectId === project.id && ctx.ci.isActive(j)).length,
  });
  const contentType = ctx.faults.takeJobRequestContentType();
  const text = JSON.stringify(job.payload);
  if (contentType !== undefined) job.servedNonJson = true;
  poll.answers = (poll.answers ?? 0) + 1;
  writeHead(res, 201, { ...polling, 'Content-Type': contentType ?? 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Check 2. GitLab itself takes any value (a stale one only costs it a queue lookup), so the check is about
 * the runner keeping its cursor, and a request already in flight when a newer value went out may carry
 * the older one. In flight is judged by what the runner showed, not by time alone, because under load a
 * request can wait in either process for seconds:
 * - a value superseded less than IN_FLIGHT_MS ago is accepted;
 * - once a request carrying the newer value (or a later one) has arrived, the runner knew it: an older
 *   value arriving more than IN_FLIGHT_MS after that is a violation;
 * - until then, an older value is accepted only while the token has other requests answered since the
 *   newer value went out (several requests in flight at once, gitlab-runner's request_concurrency); a
 *   runner asking one request at a time has none, and is held to the latest value.
 */
function checkLastUpdate(ctx: FakeContext, poll: PollState, sent: string | undefined, now: number): void {
  const history = poll.lastUpdates;
  const latest = history[history.length - 1];
  // Absent is the state before the first value; otherwise find when `sent` stopped being the latest.
  const idx = sent === undefined ? -1 : history.map((h) => h.value).lastIndexOf(sent);
  if (idx >= 0) history[idx]!.carriedAt ??= now;
  if (sent === latest?.value) return;
  const next = sent === undefined || idx >= 0 ? history[idx + 1] : undefined;
  if (next !== undefined && inFlight(poll, idx, next, now)) return;
  if (!latest) {
    ctx.violations.add(2, `${WHERE}: last_update "${sent}" sent before the fake ever sent X-GitLab-Last-Update for this token`);
  } else if (sent === undefined) {
    ctx.violations.add(2, `${WHERE}: last_update missing; expected "${latest.value}", the last X-GitLab-Last-Update sent for this token`);
  } else {
    ctx.violations.add(2, `${WHERE}: last_update "${sent}" is not "${latest.value}", the last X-GitLab-Last-Update sent for this token`);
  }
}

function inFlight(poll: PollState, idx: number, next: PollState['lastUpdates'][number], now: number): boolean {
  if (now - next.since < IN_FLIGHT_MS) return true;
  const newer = poll.lastUpdates.slice(idx + 1).map((h) => h.carriedAt).filter((t): t is number => t !== undefined);
  if (newer.length > 0) return now - Math.min(...newer) < IN_FLIGHT_MS;
  // The answer that made `next` the latest is one of the answers counted since; any other means overlap.
  return (poll.answers ?? 0) - (next.answersBefore ?? 0) > 1;
}

function checkRequestShape(
  ctx: FakeContext,
  systemId: string | undefined,
  info: Record<string, unknown> | undefined,
  features: Record<string, unknown>,
): void {
  if (!systemId) ctx.violations.add(1, `${WHERE}: system_id is missing`);
  if (!info) ctx.violations.add(1, `${WHERE}: info is missing`);
  const missing = REQUIRED_NETWORK_FEATURES.filter((f) => features[f] !== true);
  if (missing.length) ctx.violations.add(1, `${WHERE}: info.features must have ${missing.join(', ')} true`);
}

/** Rails Ci::Runner#matches_build?: every tag of the job among the runner's, and an untagged job only
 *  for a runner that runs untagged jobs. */
function runnerMatches(runner: RunnerRecord, tags: readonly string[]): boolean {
  if (tags.length === 0) return runner.runUntagged;
  return tags.every((t) => runner.tags.includes(t));
}

/** Rails RegisterJobService: first pending job in FIFO order; jobs needing unadvertised features are dropped. */
function assignNext(ctx: FakeContext, runner: RunnerRecord, features: Record<string, unknown>, systemId: string | undefined): JobRecord | undefined {
  for (const job of ctx.ci.queue()) {
    if (!runnerMatches(runner, job.spec.tags ?? [])) continue;
    const missing = requiredFeatures(job.spec).filter((r) => features[r.feature] !== true);
    if (missing.length) {
      const what = missing.map((m) => `${m.feature} (for ${m.why})`).join(', ');
      ctx.violations.add(3, `job ${job.id} (${job.name}) dropped as runner_unsupported: the request did not advertise ${what}`);
      ctx.ci.transition(job, 'failed', { failureReason: 'runner_unsupported' });
      continue;
    }
    job.runnerId = runner.id;
    if (systemId !== undefined) job.systemId = systemId;
    job.features = features;
    job.cancelGracefully = features.cancel_gracefully === true;
    job.intervalS = ctx.faults.traceUpdateIntervalS;
    job.lastContactAt = ctx.clock.now();
    if (ctx.opts.twoPhaseCommit && features.two_phase_job_commit === true) {
      job.awaitingAck = true; // stays pending until PUT state=running
      job.startedAt = ctx.clock.now();
    } else {
      ctx.ci.transition(job, 'running');
    }
    return job;
  }
  return undefined;
}

function waitForQueueChange(ctx: FakeContext, runner: RunnerRecord, value: string, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      ctx.queueWaiters.delete(wake);
      res.off('close', done);
      resolve();
    };
    // `force` is used by stop(); otherwise only a changed queue value ends the wait early.
    const wake = (force: boolean): void => {
      if (force || runner.queueValue !== value) done();
    };
    const timer = setTimeout(done, ctx.opts.longPollMs);
    ctx.queueWaiters.add(wake);
    // The response (not the request) tells when the runner hangs up.
    res.on('close', done);
  });
}
