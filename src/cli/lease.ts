// Builds the fleet's lease from `lease:` in the config (README "One coordinator per fleet"), and this
// process's identity as a holder: a random id (the fencing identity; a restarted task is a new holder) and,
// for the logs of the coordinator waiting behind it, the ECS task ARN when ECS tells it, else the host name.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FleetConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import type { Lease } from '../core/lease.js';
import type { Logger } from '../core/logger.js';
import { createDynamoDbClient } from '../providers/aws/clients.js';
import { DynamoDbLeaseStore } from '../providers/aws/dynamodb-lease.js';
import { FileLeaseStore } from '../providers/file-lease.js';
import { LeaseKeeper, unleased } from '../runner/lease-keeper.js';

export interface BuildLeaseOptions {
  stateDir: string;
  clock: Clock;
  logger: Logger;
  env?: Readonly<Record<string, string | undefined>>;
}

/** The lease of `config.lease`, or `unleased` (held at once, never lost) when the config has none. */
export async function buildLease(config: FleetConfig, o: BuildLeaseOptions): Promise<Lease> {
  const l = config.lease;
  if (!l) return unleased;
  const env = o.env ?? process.env;
  const store = l.dynamodb
    ? new DynamoDbLeaseStore({ client: createDynamoDbClient({ ...(l.dynamodb.region !== undefined && { region: l.dynamodb.region }), env }), table: l.dynamodb.table, key: config.fleet })
    : new FileLeaseStore({ dir: l.file?.path ?? join(o.stateDir, 'lease'), name: config.fleet, now: () => o.clock.now() });
  const owner = `${(await ecsTaskArn(env)) ?? hostname()} pid ${process.pid}`;
  return new LeaseKeeper({
    store,
    holder: { id: randomUUID(), owner },
    durationMs: l.durationMs,
    renewIntervalMs: l.renewIntervalMs,
    maxClockSkewMs: l.maxClockSkewMs,
    clock: o.clock,
    monotonicNow: () => performance.now(),
    logger: o.logger,
  });
}

/** The task ARN from the ECS task metadata endpoint (v4), or undefined outside ECS or when it does not answer. */
export async function ecsTaskArn(env: Readonly<Record<string, string | undefined>>, timeoutMs = 2_000): Promise<string | undefined> {
  const base = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!base) return undefined;
  try {
    const res = await fetch(`${base.replace(/\/+$/, '')}/task`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const arn = ((await res.json()) as { TaskARN?: unknown }).TaskARN;
    return typeof arn === 'string' && arn ? arn : undefined;
  } catch {
    return undefined;
  }
}
