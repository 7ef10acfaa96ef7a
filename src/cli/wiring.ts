// Adapters from the gitlab/ client to the runner loop's ports.

import type { Clock } from '../core/clock.js';
import type { JobPayload } from '../core/job.js';
import type { Logger } from '../core/logger.js';
import type { TraceLog } from '../core/trace.js';
import { isDelivered, JobTraceSession, type RunnerApi, type RunnerHealth, type RunnerIdentity, type RunnerInfo } from '../gitlab/index.js';
import { debugModeEnabled } from '../jobs/index.js';
import type { FleetMetrics } from '../metrics/metrics.js';
import type { JobChannel, JobFeed, JobRequestOutcome, OpenJobChannelOptions } from '../runner/ports.js';

export function gitlabJobFeed(o: {
  /** The runner's name (config `runners`), for the metrics. */
  runner: string;
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
      o.metrics?.jobRequests.inc({ runner: o.runner, result: r.kind });
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

export function gitlabJobChannel(o: { api: RunnerApi; info: RunnerInfo; clock: Clock; logger: Logger; metrics?: FleetMetrics; finalUpdateMaxBackoffMs?: number }) {
  return (job: JobPayload, log: TraceLog, options: OpenJobChannelOptions = {}): JobChannel => {
    let session: JobTraceSession | undefined;
    let callbacks: { onCancel(): void; onAbort(reason: string): void } | undefined;
    const debugTrace = debugModeEnabled(job.variables);
    session = new JobTraceSession({
      api: o.api,
      job,
      trace: log,
      clock: o.clock,
      info: o.info,
      debugTrace,
      logger: o.logger,
      ...(options.resumeFrom !== undefined && { resumeFrom: options.resumeFrom }),
      ...(o.finalUpdateMaxBackoffMs !== undefined && { timing: { finalUpdateBackoffMaxMs: o.finalUpdateMaxBackoffMs } }),
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
        o.metrics?.finalStatesPending.inc();
        try {
          const r = await session!.finish(outcome);
          if (r.abandoned) o.logger.warn({ job: job.id, lastStatus: r.lastStatus }, 'final job state not delivered before shutdown; the next start delivers it');
          else if (!r.accepted && !r.ended) o.logger.error({ job: job.id, lastStatus: r.lastStatus }, 'GitLab refused the final job state');
          return isDelivered(r) ? 'delivered' : 'pending';
        } catch (e) {
          o.logger.error({ job: job.id, err: (e as Error).message }, 'final job update failed');
          return 'pending';
        } finally {
          o.metrics?.finalStatesPending.dec();
          await session?.stop().catch(() => undefined);
          session = undefined;
        }
      },
      abandon() {
        void session?.stop();
      },
      storedBytes() {
        return session?.sentBytes ?? 0;
      },
      async handOff(signal) {
        const s = session;
        if (!s) return 0;
        const onAbort = () => void s.stop();
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          return await s.handOff();
        } finally {
          signal.removeEventListener('abort', onAbort);
          await s.stop().catch(() => undefined);
        }
      },
    };
  };
}
