// Adapters from the gitlab/ client to the runner loop's ports.

import type { Clock } from '../core/clock.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import type { TraceLog } from '../core/trace.js';
import { JobTraceSession, type RunnerApi, type RunnerHealth, type RunnerIdentity, type RunnerInfo } from '../gitlab/index.js';
import type { FleetMetrics } from '../metrics/metrics.js';
import type { JobChannel, JobFeed, JobRequestOutcome } from '../runner/ports.js';

export function gitlabJobFeed(o: {
  api: RunnerApi;
  identity: RunnerIdentity;
  health: RunnerHealth;
  systemId: string;
  info: RunnerInfo;
  clock: Clock;
  metrics?: FleetMetrics;
}): JobFeed {
  return {
    async requestJob(signal): Promise<JobRequestOutcome> {
      if (!o.health.shouldRequest()) {
        const until = o.health.skippingUntil() ?? o.clock.now() + 60_000;
        return { kind: 'paused', retryInMs: Math.max(1000, until - o.clock.now()), reason: 'GitLab answered 403 three times in a row (runner token invalid or expired?)' };
      }
      const r = await o.api.requestJob({ token: o.identity.token, systemId: o.systemId, info: o.info, signal });
      o.health.record(r);
      o.metrics?.jobRequests.inc({ result: r.kind });
      switch (r.kind) {
        case 'job':
          return r.unreadable ? { kind: 'job', job: r.job, unreadable: r.unreadable } : { kind: 'job', job: r.job };
        case 'none':
          return { kind: 'none', longPolled: r.longPolled };
        case 'forbidden':
          return { kind: 'error', message: 'GitLab refused the runner token (403 forbidden)' };
        default:
          return { kind: 'error', message: `${r.kind} (HTTP ${r.status}): ${r.message}` };
      }
    },
  };
}

export function gitlabJobChannel(o: { api: RunnerApi; info: RunnerInfo; clock: Clock; logger: Logger }) {
  return (job: JobPayload, log: TraceLog): JobChannel => {
    let session: JobTraceSession | undefined;
    let callbacks: { onCancel(): void; onAbort(reason: string): void } | undefined;
    const debugTrace = job.variables.some((v) => (v.key === 'CI_DEBUG_TRACE' || v.key === 'CI_DEBUG_SERVICES') && v.value === 'true');
    session = new JobTraceSession({
      api: o.api,
      job,
      trace: log,
      clock: o.clock,
      info: o.info,
      debugTrace,
      logger: o.logger,
      onCancel: () => callbacks?.onCancel(),
      onAbort: (reason) => callbacks?.onAbort(`GitLab stopped the job (${reason.cause}, HTTP ${reason.status}${reason.jobStatus ? `, job status ${reason.jobStatus}` : ''})`),
    });
    return {
      async acknowledge() {
        const ack = await session!.acknowledge();
        return ack === 'running' ? 'ok' : ack;
      },
      start(cb) {
        callbacks = cb;
        session!.start();
      },
      async finish(outcome) {
        try {
          const r = await session!.finish(outcome);
          if (!r.accepted) o.logger.warn({ job: job.id, lastStatus: r.lastStatus }, 'GitLab did not accept the final job state');
        } catch (e) {
          o.logger.error({ job: job.id, err: (e as Error).message }, 'final job update failed');
        } finally {
          await session!.stop().catch(() => undefined);
          session = undefined;
        }
      },
    };
  };
}
