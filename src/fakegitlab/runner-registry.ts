// Runners, their tokens and managers, and per-token polling history. Tokens expire by the injected clock;
// a token replaced by reset_authentication_token is remembered so that its later use is a violation.
import { randomUUID } from 'node:crypto';
import type { ManagerRecord, PollState, RunnerRecord } from './records.js';
import type { AddRunnerOptions } from './types.js';
import { randomHex, randomToken } from './http-util.js';
import type { Violations } from './violations.js';

export class RunnerRegistry {
  private readonly byToken = new Map<string, RunnerRecord>();
  private readonly retired = new Map<string, number>(); // old token → runner id
  private readonly polls = new Map<string, PollState>();
  private nextId = 1;
  readonly registrationToken: string;

  constructor(
    private readonly clock: { now(): number },
    private readonly violations: Violations,
    registrationToken?: string,
  ) {
    this.registrationToken = registrationToken ?? `GR1348941${randomToken(20)}`;
  }

  add(opts: AddRunnerOptions & { kind?: RunnerRecord['kind'] } = {}): RunnerRecord {
    const token = opts.token ?? `glrt-${randomToken(20)}`;
    if (this.byToken.has(token)) throw new Error(`runner token already in use: ${token.slice(0, 8)}…`);
    const runner: RunnerRecord = {
      id: this.nextId++,
      token,
      kind: opts.kind ?? (token.startsWith('glrt-') ? 'authentication' : 'legacy'),
      description: opts.description ?? null,
      uuid: randomUUID(),
      issuedAt: this.clock.now(),
      paused: opts.paused ?? false,
      managers: new Map(),
      queueValue: randomHex(16),
      tags: [...(opts.tags ?? [])],
      runUntagged: opts.runUntagged ?? true,
    };
    if (opts.tokenExpiresAt !== undefined) runner.tokenExpiresAt = new Date(opts.tokenExpiresAt).getTime();
    if (opts.maximumTimeout !== undefined) runner.maximumTimeout = opts.maximumTimeout;
    this.byToken.set(token, runner);
    return runner;
  }

  all(): RunnerRecord[] {
    return [...this.byToken.values()];
  }

  byId(id: number): RunnerRecord | undefined {
    return this.all().find((r) => r.id === id);
  }

  /** The runner for a token that is valid now; records a violation for a token retired by a reset. */
  authenticate(token: string, where: string): RunnerRecord | undefined {
    const runner = this.byToken.get(token);
    if (!runner) {
      const oldOf = this.retired.get(token);
      if (oldOf !== undefined) {
        this.violations.add(30, `${where}: runner ${oldOf} used its old token after reset_authentication_token`);
      }
      return undefined;
    }
    if (runner.tokenExpiresAt !== undefined && this.clock.now() >= runner.tokenExpiresAt) return undefined;
    return runner;
  }

  /** True for any runner or registration token, current or retired: they must never reach /jobs/:id*. */
  isRunnerToken(value: string): boolean {
    return value === this.registrationToken || this.byToken.has(value) || this.retired.has(value);
  }

  /** Every runner-level secret, for trace scanning. */
  runnerTokens(): string[] {
    return [this.registrationToken, ...this.byToken.keys(), ...this.retired.keys()];
  }

  remove(runner: RunnerRecord): void {
    this.byToken.delete(runner.token);
  }

  resetToken(runner: RunnerRecord): RunnerRecord {
    const now = this.clock.now();
    if (runner.tokenExpiresAt !== undefined) {
      // docs/gitlab-protocol.md §1: the runner rotates at 75 % of the lifetime; the first verify can only make that later.
      const lifetime = runner.tokenExpiresAt - runner.issuedAt;
      if (now - runner.issuedAt < 0.7 * lifetime) {
        this.violations.add(
          30,
          `runner ${runner.id} reset its token after ${Math.round(((now - runner.issuedAt) / lifetime) * 100)}% of its lifetime, expected about 75%`,
        );
      }
      runner.tokenExpiresAt = now + lifetime;
    }
    this.byToken.delete(runner.token);
    this.retired.set(runner.token, runner.id);
    runner.token = runner.kind === 'authentication' ? `glrt-${randomToken(20)}` : randomToken(20);
    runner.issuedAt = now;
    runner.queueValue = randomHex(16); // Rails keys the queue by token
    this.byToken.set(runner.token, runner);
    return runner;
  }

  heartbeat(runner: RunnerRecord, systemId: string | undefined, features: Record<string, unknown> | undefined): ManagerRecord {
    const key = systemId ?? '<legacy>';
    let m = runner.managers.get(key);
    if (!m) {
      m = { systemId: key, features: {}, contactedAt: 0 };
      runner.managers.set(key, m);
    }
    m.contactedAt = this.clock.now();
    if (features) m.features = features;
    return m;
  }

  /** A job became pending: every runner's queue value changes (all runners may run all jobs). */
  tickAll(): void {
    for (const r of this.byToken.values()) r.queueValue = randomHex(16);
  }

  poll(token: string): PollState {
    let p = this.polls.get(token);
    if (!p) {
      p = { lastUpdates: [], last204WasLongPoll: false, consecutive403: 0 };
      this.polls.set(token, p);
    }
    return p;
  }

  /** A restarted runner process starts without a long-poll cursor. */
  forgetLastUpdates(token: string): void {
    const p = this.polls.get(token);
    if (p) p.lastUpdates = [];
  }

  expiresAtIso(runner: RunnerRecord): string | null {
    return runner.tokenExpiresAt === undefined ? null : new Date(runner.tokenExpiresAt).toISOString();
  }
}
