// The spot circuit breaker of one executor: after `interruptions` spot interruptions within `windowMs`, every
// new machine is on-demand for `onDemandForMs`, so a spot pool that keeps taking machines back stops
// costing job reruns. It then closes by itself; a new burst opens it again.
//
// decideSpotBreaker is pure (state, settings, now) → decision with a named reason; SpotBreaker keeps the
// state on an injected clock and tells an observer (log line, metric) when it opens or closes.

import type { Clock } from '../core/clock.js';

export interface SpotBreakerSettings {
  /** Interruptions within the window that open the breaker. */
  interruptions: number;
  windowMs: number;
  /** How long it stays open (on-demand only). */
  onDemandForMs: number;
}

export const DEFAULT_SPOT_BREAKER: SpotBreakerSettings = Object.freeze({ interruptions: 2, windowMs: 15 * 60_000, onDemandForMs: 30 * 60_000 });

export interface SpotBreakerState {
  /** When the interruptions still inside the window happened (ms epoch, oldest first). */
  recent: readonly number[];
  /** Open until then (ms epoch); undefined when closed. */
  openUntil?: number;
}

export type SpotBreakerReason =
  | 'interruptions_in_window' // opens: enough interruptions within the window
  | 'below_threshold' // stays closed
  | 'open_period' // stays open
  | 'open_period_over'; // closes

export interface SpotBreakerDecision {
  state: SpotBreakerState;
  open: boolean;
  reason: SpotBreakerReason;
}

/** Where the breaker stands at `now`, after `interruptedAt` (an interruption just reported) if given. */
export function decideSpotBreaker(state: SpotBreakerState, s: SpotBreakerSettings, now: number, interruptedAt?: number): SpotBreakerDecision {
  const recent = [...state.recent, ...(interruptedAt === undefined ? [] : [interruptedAt])].filter((t) => t > now - s.windowMs && t <= now);
  if (state.openUntil !== undefined && now < state.openUntil) return { state: { recent, openUntil: state.openUntil }, open: true, reason: 'open_period' };
  if (recent.length >= s.interruptions) {
    // The interruptions that opened it are spent: after the open period a new burst is needed.
    return { state: { recent: [], openUntil: now + s.onDemandForMs }, open: true, reason: 'interruptions_in_window' };
  }
  return { state: { recent }, open: false, reason: state.openUntil !== undefined ? 'open_period_over' : 'below_threshold' };
}

export interface SpotBreakerChange {
  open: boolean;
  reason: SpotBreakerReason;
  /** When an open breaker closes again (ms epoch). */
  until?: number;
  interruptions: number;
}

export class SpotBreaker {
  private state: SpotBreakerState = { recent: [] };

  constructor(
    private readonly settings: SpotBreakerSettings,
    private readonly clock: Clock,
    private readonly onChange: (c: SpotBreakerChange) => void = () => undefined,
  ) {}

  /** A machine of this executor was interrupted. */
  record(): void {
    this.step(this.clock.now());
  }

  /** True while new machines must be on-demand. */
  onDemandOnly(): boolean {
    return this.step();
  }

  private step(interruptedAt?: number): boolean {
    const wasOpen = this.state.openUntil !== undefined;
    const count = this.state.recent.length + (interruptedAt === undefined ? 0 : 1);
    const d = decideSpotBreaker(this.state, this.settings, this.clock.now(), interruptedAt);
    this.state = d.state;
    if (d.reason === 'interruptions_in_window') this.onChange({ open: true, reason: d.reason, until: d.state.openUntil!, interruptions: count });
    else if (d.reason === 'open_period_over' && wasOpen) this.onChange({ open: false, reason: d.reason, interruptions: d.state.recent.length });
    return d.open;
  }
}
