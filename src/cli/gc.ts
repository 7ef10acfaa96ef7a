// `fleetrunner gc --config F [--dry-run] [--grace D] [--force]`: garbage collection for the whole deployment
// (docs/architecture.md §4.1, §4.2). Lists every machine of the fleet through each executor's provider
// (all coordinator tags), decides with fleet/fleet-gc.ts, prints one row per machine with its reason, and
// (unless --dry-run) terminates the ones to remove. Whether a coordinator of this deployment runs is told by
// the lease, tried without waiting: free means none runs (gc then holds it until done, so a coordinator
// starting meanwhile waits); without `lease:` nobody can tell and the deployment's machines are kept unless
// --force. Exit 0 ok, 1 when a listing or a terminate failed (2 for bad usage or config, in main.ts).

import { homedir } from 'node:os';
import { join } from 'node:path';

import type { FleetConfig } from '../config/index.js';
import { systemClock, type Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { HeldLease, Lease } from '../core/lease.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { CapacityProvider, Machine } from '../core/machine.js';
import { GC_REASONS, planGarbage, type GcDecision } from '../fleet/fleet-gc.js';
import { deploymentIdentity, deploymentKeySecret, redact } from '../gitlab/index.js';
import { buildExecutor } from './executors.js';
import { buildLease } from './lease.js';

export const DEFAULT_GC_GRACE_MS = 30 * 60_000;
/** How long gc tries the lease: a free or expired lease is claimed at once; a held one is not waited for. */
const LEASE_TRY_MS = 2_000;

export interface GcOptions {
  dryRun?: boolean;
  /** Without a lease (or when its store does not answer), treat the deployment as having no coordinator. */
  force?: boolean;
  /** Machines younger than this are kept. Default 30 min. */
  graceMs?: number;
  clock?: Clock;
  /** Where the table goes. Default stdout. */
  write?: (text: string) => void;
  /** Test seam: an executor's provider (default: built from its config as `run` does). */
  providerFor?: (e: FleetConfig['executors'][number]) => CapacityProvider | undefined;
  /** Test seam: the lease (default: built from `config.lease`). */
  lease?: Lease;
  leaseTryMs?: number;
}

interface CoordinatorState {
  running: boolean | 'unknown';
  /** What the table's header says about it. */
  note: string;
  held?: HeldLease;
}

export async function runGc(config: FleetConfig, o: GcOptions = {}): Promise<number> {
  const clock = o.clock ?? systemClock;
  const token = config.gitlab.token ?? config.gitlab.registrationToken!;
  const secrets = [config.gitlab.token, config.gitlab.registrationToken];
  const write = (s: string) => (o.write ?? ((t: string) => void process.stdout.write(t)))(redact(s, secrets));
  const { coordinatorId } = deploymentIdentity({ fleet: config.fleet, gitlabUrl: config.gitlab.url, token });
  const keySecret = deploymentKeySecret({ fleet: config.fleet, gitlabUrl: config.gitlab.url, token });
  const graceMs = o.graceMs ?? DEFAULT_GC_GRACE_MS;

  const providers = config.executors.map(
    (e) => buildExecutor(e, { config, clock, logger: silentLogger, shortToken: () => '', keySecret, ...(o.providerFor && { providerFor: o.providerFor }) }).provider,
  );
  const coordinator = await coordinatorState(config, clock, o);
  let failed = false;
  try {
    // Executors may share a provider's view (two local executors on one root, two ec2 executors in one
    // region): each machine once, terminated through the first provider that listed it.
    const owner = new Map<string, CapacityProvider>();
    const machines: Machine[] = [];
    const listErrors: string[] = [];
    for (const [i, p] of providers.entries()) {
      try {
        for (const m of await p.list({ fleet: config.fleet })) {
          if (owner.has(m.id)) continue;
          owner.set(m.id, p);
          machines.push(m);
        }
      } catch (e) {
        listErrors.push(`executor ${config.executors[i]!.name}: listing failed: ${errorMessage(e)}`);
      }
    }
    const running = coordinator.running === 'unknown' && o.force ? false : coordinator.running;
    const now = clock.now();
    const decisions = planGarbage({ machines, coordinatorId, executors: config.executors.map((e) => e.name), coordinatorRunning: running, now, graceMs });

    const head = [`fleet ${config.fleet}, this deployment's coordinator tag ${coordinatorId}`, `coordinator: ${coordinator.note}${coordinator.running === 'unknown' && o.force ? ' (--force: treated as none running)' : ''}`, `grace: ${formatAge(graceMs)}`, ''];
    write(`${head.join('\n')}\n${formatGcTable(decisions, now)}`);
    for (const e of listErrors) write(`error: ${e}\n`);
    failed = listErrors.length > 0;

    const remove = decisions.filter((d) => d.action === 'remove');
    if (o.dryRun) {
      write(`\ndry run: ${remove.length} to remove, ${decisions.length - remove.length} kept; nothing terminated\n`);
    } else if (remove.length) {
      if (coordinator.held && !coordinator.held.held()) {
        write('\nerror: the lease was lost while collecting: nothing terminated\n');
        return 1;
      }
      const byProvider = new Map<CapacityProvider, string[]>();
      for (const d of remove) byProvider.set(owner.get(d.machine.id)!, [...(byProvider.get(owner.get(d.machine.id)!) ?? []), d.machine.id]);
      const errors: string[] = [];
      for (const [p, ids] of byProvider) {
        try {
          errors.push(...(await p.terminate(ids)).errors.map(errorMessage));
        } catch (e) {
          errors.push(`terminate ${ids.join(', ')}: ${errorMessage(e)}`);
        }
      }
      for (const e of errors) write(`error: ${e}\n`);
      write(errors.length ? `\n${errors.length} terminate error${errors.length > 1 ? 's' : ''} while removing ${remove.length} machine${remove.length > 1 ? 's' : ''}\n` : `\nremoved ${remove.length} machine${remove.length > 1 ? 's' : ''}: ${remove.map((d) => d.machine.id).join(', ')}\n`);
      if (errors.length) failed = true;
    } else {
      write('\nnothing to remove\n');
    }
    return failed ? 1 : 0;
  } finally {
    await coordinator.held?.release();
    await Promise.allSettled(providers.map((p) => p.shutdown()));
  }
}

/** Tries the lease for a short while: held means no coordinator of this deployment runs. */
async function coordinatorState(config: FleetConfig, clock: Clock, o: GcOptions): Promise<CoordinatorState> {
  if (!config.lease && !o.lease) return { running: 'unknown', note: 'unknown: no `lease:` configured' };
  // The lease keeper logs whom it waits for, or that its store did not answer: that tells a held lease from a silent store.
  let holder: string | undefined;
  let storeError: string | undefined;
  const watch: Logger = {
    debug() {},
    info(f) {
      if (typeof f.holder === 'string') holder = f.holder;
    },
    warn(f) {
      if (f.err !== undefined) storeError = String(f.err);
    },
    error() {},
    child: () => watch,
  };
  let held: HeldLease | undefined;
  try {
    const lease = o.lease ?? (await buildLease(config, { stateDir: config.stateDir ?? join(homedir(), '.fleetrunner'), clock, logger: watch }));
    held = await lease.acquire(AbortSignal.timeout(o.leaseTryMs ?? LEASE_TRY_MS));
  } catch (e) {
    return { running: 'unknown', note: `unknown: the lease could not be tried: ${errorMessage(e)}` };
  }
  if (held) return { running: false, note: 'none running (the lease was free; gc holds it until done)', held };
  if (holder !== undefined) return { running: true, note: `running: the lease is held by ${holder}` };
  return { running: 'unknown', note: `unknown: the lease store did not answer${storeError !== undefined ? `: ${storeError}` : ''}` };
}

/** MACHINE EXECUTOR STATE AGE COORDINATOR ACTION REASON, and a legend of the reasons used. */
export function formatGcTable(decisions: readonly GcDecision[], now: number): string {
  if (decisions.length === 0) return 'no machines of this fleet\n';
  const header = ['MACHINE', 'EXECUTOR', 'STATE', 'AGE', 'COORDINATOR', 'ACTION', 'REASON'];
  const rows = decisions.map((d) => [d.machine.id, d.machine.tags.executor, d.machine.state, formatAge(now - d.machine.createdAt), d.machine.tags.coordinator, d.action, d.reason]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const used = [...new Set(decisions.map((d) => d.reason))];
  return `${[line(header), ...rows.map(line), '', ...used.map((r) => `${r}: ${GC_REASONS[r].text}`)].join('\n')}\n`;
}

/** 45s, 12m05s, 3h07m, 2d04h. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}
