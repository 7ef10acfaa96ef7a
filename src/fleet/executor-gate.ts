// Whether an executor may take jobs, by its preflight checks (credentials, subnets, AMI, bucket, sshd…). An
// executor whose checks fail takes no jobs, instead of failing every job routed to it; it is checked again
// every `retryMs` until it passes. An available executor is re-checked every `revalidateMs`; a re-check that
// fails only for reasons that may pass on their own (throttling, a timeout) leaves it available.
//
// No timers of its own: `tick()` checks when a check is due, and the owner calls it on a schedule (the
// coordinator's maintenance loop), so stopping the owner stops the checks. Time comes from the injected clock.

import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { describeCheck, type CheckResult } from '../core/preflight.js';

export const DEFAULT_GATE_RETRY_MS = 3 * 60_000;
export const DEFAULT_GATE_REVALIDATE_MS = 15 * 60_000;

/** `unchecked`: no check has finished yet; it takes no jobs then either. */
export type GateState = 'unchecked' | 'available' | 'unavailable';

export interface ExecutorGateOptions {
  executor: string;
  /** The executor's preflight; a throw counts as one failed check. */
  check: () => Promise<readonly CheckResult[]>;
  clock: Clock;
  logger: Logger;
  /** While unavailable (or after a transient failure), check again this long after the last check. Default 3 min. */
  retryMs?: number;
  /** While available, check again this long after the last check; 0: never. Default 15 min. */
  revalidateMs?: number;
}

export class ExecutorGate {
  readonly executor: string;
  private current: GateState = 'unchecked';
  private last: readonly CheckResult[] = [];
  private dueAt = -Infinity;
  private inFlight: Promise<GateState> | undefined;
  private readonly listeners = new Set<(gate: ExecutorGate) => void>();
  private readonly retryMs: number;
  private readonly revalidateMs: number;
  private checks: () => Promise<readonly CheckResult[]>;

  constructor(private readonly o: ExecutorGateOptions) {
    this.executor = o.executor;
    this.checks = o.check;
    this.retryMs = o.retryMs ?? DEFAULT_GATE_RETRY_MS;
    this.revalidateMs = o.revalidateMs ?? DEFAULT_GATE_REVALIDATE_MS;
  }

  get state(): GateState {
    return this.current;
  }

  /** True only once a check passed (and no later check failed for good). */
  get available(): boolean {
    return this.current === 'available';
  }

  /** The results of the last finished check. */
  get results(): readonly CheckResult[] {
    return this.last;
  }

  /** The failed checks of the last finished check. */
  get failures(): readonly CheckResult[] {
    return this.last.filter((r) => r.status === 'fail');
  }

  /** Why it takes no jobs, in one line; undefined while available. */
  get reason(): string | undefined {
    if (this.current === 'available') return undefined;
    if (this.current === 'unchecked') return 'preflight checks not finished yet';
    return this.failures.map(describeCheck).join('; ');
  }

  /** When `tick()` checks next (ms since the epoch; Infinity: never). */
  get nextCheckAt(): number {
    return this.dueAt;
  }

  /** Told after every change of `state`; returns the unsubscribe function. */
  onChange(listener: (gate: ExecutorGate) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** New checks (a reloaded config): the next `tick()` runs them. The state stays until they finish. */
  replaceCheck(check: () => Promise<readonly CheckResult[]>): void {
    this.checks = check;
    this.dueAt = -Infinity;
  }

  /** Checks now; calls made while a check runs share it. */
  check(): Promise<GateState> {
    this.inFlight ??= this.runCheck().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  /** Checks if a check is due (the first call always is). */
  async tick(): Promise<void> {
    if (this.inFlight) return void (await this.inFlight);
    if (this.o.clock.now() >= this.dueAt) await this.check();
  }

  private async runCheck(): Promise<GateState> {
    let results: readonly CheckResult[];
    try {
      results = await this.checks();
    } catch (e) {
      results = [{ executor: this.executor, check: 'preflight', target: this.executor, status: 'fail', code: 'Error', message: errorMessage(e) }];
    }
    const failures = results.filter((r) => r.status === 'fail');
    const before = this.current;
    const transientOnly = failures.length > 0 && failures.every((f) => f.retryable === true);
    const next: GateState = failures.length === 0 || (before === 'available' && transientOnly) ? 'available' : 'unavailable';
    const now = this.o.clock.now();
    this.last = results;
    this.dueAt = next === 'unavailable' || failures.length > 0 ? now + this.retryMs : this.revalidateMs > 0 ? now + this.revalidateMs : Infinity;
    const fields = { executor: this.executor, failing: failures.map(describeCheck) };
    const retryInS = Math.round(this.retryMs / 1000);
    if (next === 'unavailable') {
      if (before === 'unavailable') this.o.logger.warn({ ...fields, retryInS }, 'executor still fails its preflight checks: it takes no jobs');
      else this.o.logger.error({ ...fields, retryInS }, 'executor failed its preflight checks: it takes no jobs until they pass');
    } else if (failures.length > 0) {
      this.o.logger.warn({ ...fields, retryInS }, 'preflight re-check failed for a passing reason: the executor keeps taking jobs');
    } else if (before === 'unavailable') {
      this.o.logger.info({ executor: this.executor, checks: results.length }, 'executor passed its preflight checks: taking jobs again');
    } else if (before === 'unchecked') {
      this.o.logger.info({ executor: this.executor, checks: results.length }, 'executor passed its preflight checks');
    }
    if (next !== before) {
      this.current = next;
      for (const l of [...this.listeners]) {
        try {
          l(this);
        } catch (e) {
          this.o.logger.warn({ executor: this.executor, err: errorMessage(e) }, 'executor gate listener failed');
        }
      }
    }
    return next;
  }
}

/** The gates of every executor, by name. */
export class ExecutorGates {
  private readonly byName = new Map<string, ExecutorGate>();

  constructor(gates: Iterable<ExecutorGate>) {
    for (const g of gates) this.byName.set(g.executor, g);
  }

  get(executor: string): ExecutorGate | undefined {
    return this.byName.get(executor);
  }

  all(): ExecutorGate[] {
    return [...this.byName.values()];
  }

  /** An executor without a gate is available. */
  isAvailable(executor: string): boolean {
    return this.byName.get(executor)?.available ?? true;
  }

  /** The executors that take no jobs now, and why. */
  unavailable(): Array<{ executor: string; reason: string }> {
    return this.all()
      .filter((g) => !g.available)
      .map((g) => ({ executor: g.executor, reason: g.reason ?? '' }));
  }

  /** Checks every gate now, in parallel. */
  async checkAll(): Promise<void> {
    await Promise.all(this.all().map((g) => g.check()));
  }

  /** Checks the gates that are due, in parallel: for a maintenance task. */
  async tick(): Promise<void> {
    await Promise.all(this.all().map((g) => g.tick()));
  }

  /** Told when any gate changes state; returns the unsubscribe function. */
  onChange(listener: (gate: ExecutorGate) => void): () => void {
    const offs = this.all().map((g) => g.onChange(listener));
    return () => offs.forEach((off) => off());
  }
}
