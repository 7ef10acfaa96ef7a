// The AMI to launch: the configured id, or the value of an SSM parameter (default: the latest Amazon Linux
// 2023), looked up on first use and again once it is an hour old, so a long-running coordinator picks up new
// AMIs (security patches) without a restart. A failed refresh keeps the last good value and says so.

import { GetParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';

import type { Clock } from '../../core/clock.js';
import { PermanentError, RetryableError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { classifyEc2Error } from './classify-error.js';
import { withThrottleRetry } from './throttle-retry.js';

export const AMI_REFRESH_MS = 60 * 60_000;
const AMI_RETRY_MS = 5 * 60_000;

export interface AmiResolverOptions {
  ssm: SSMClient;
  /** A fixed AMI id: no lookup at all. */
  ami?: string;
  parameter: string;
  clock: Clock;
  logger: Logger;
  random?: () => number;
}

export class AmiResolver {
  private cached: { id: string; at: number } | undefined;
  private inFlight: Promise<string> | undefined;

  constructor(private readonly o: AmiResolverOptions) {}

  async imageId(): Promise<string> {
    if (this.o.ami) return this.o.ami;
    if (this.cached && this.o.clock.now() - this.cached.at < AMI_REFRESH_MS) return this.cached.id;
    // Concurrent launches share one lookup.
    this.inFlight ??= this.refresh().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async refresh(): Promise<string> {
    try {
      const out = await withThrottleRetry(() => this.o.ssm.send(new GetParameterCommand({ Name: this.o.parameter })), {
        clock: this.o.clock,
        ...(this.o.random && { random: this.o.random }),
      });
      const id = out.Parameter?.Value?.trim();
      if (!id || !/^ami-[0-9a-f]+$/.test(id)) throw new PermanentError(`SSM parameter ${this.o.parameter} does not hold an AMI id (got ${JSON.stringify(id ?? null)})`);
      if (id !== this.cached?.id) this.o.logger.info({ ami: id, parameter: this.o.parameter }, 'resolved AMI from SSM');
      this.cached = { id, at: this.o.clock.now() };
      return id;
    } catch (e) {
      if (this.cached) {
        this.o.logger.warn({ parameter: this.o.parameter, ami: this.cached.id, err: errorMessage(e) }, 'AMI refresh failed: keeping the last value');
        // Try again in a few minutes, not on every launch.
        this.cached = { id: this.cached.id, at: this.o.clock.now() - AMI_REFRESH_MS + AMI_RETRY_MS };
        return this.cached.id;
      }
      if (e instanceof PermanentError) throw e;
      const c = classifyEc2Error(e);
      const msg = `cannot resolve the AMI from SSM parameter ${this.o.parameter}: ${c.code}: ${c.message}`;
      throw c.kind === 'throttled' || c.kind === 'transient' ? new RetryableError(msg, { cause: e }) : new PermanentError(msg, { cause: e });
    }
  }
}
