// Each executor's spot circuit breaker (fleet/spot-breaker.ts), with its log lines and metrics: the job runs
// record interruptions into it, the EC2 provider asks it before every launch.

import type { ExecutorConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { MachineInterruption } from '../core/outcome.js';
import { DEFAULT_SPOT_BREAKER, SpotBreaker } from '../fleet/spot-breaker.js';
import type { FleetMetrics } from '../metrics/metrics.js';

export interface ExecutorSpotBreaker {
  /** For the EC2 provider: true while new machines must be on-demand. */
  onDemandOnly: () => boolean;
  /** For the job runs: a machine of this executor was interrupted. */
  onInterrupted: (i: MachineInterruption) => void;
}

export function executorSpotBreaker(e: ExecutorConfig, clock: Clock, logger: Logger, metrics: FleetMetrics): ExecutorSpotBreaker {
  const executor = e.name;
  const breaker = new SpotBreaker(e.ec2?.spotCircuitBreaker ?? DEFAULT_SPOT_BREAKER, clock, (c) => {
    metrics.spotBreakerOpen.set({ executor }, c.open ? 1 : 0);
    if (c.open) {
      logger.warn({ executor, reason: c.reason, interruptions: c.interruptions, until: new Date(c.until!).toISOString() }, 'spot circuit breaker open: new machines are on-demand');
    } else logger.info({ executor, reason: c.reason }, 'spot circuit breaker closed: spot again');
  });
  return {
    onDemandOnly: () => breaker.onDemandOnly(),
    onInterrupted: (i) => {
      metrics.machineInterruptions.inc({ executor, action: i.action });
      breaker.record();
    },
  };
}
