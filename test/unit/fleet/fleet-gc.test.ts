// The deployment-level garbage collection planner (src/fleet/fleet-gc.ts): one decision per machine, with a
// named reason, on a fixed `now`.
import { describe, expect, it } from 'vitest';
import type { Machine, MachineState } from '../../../src/core/machine.js';
import { GC_REASONS, planGarbage, type GcReason, type PlanGarbageInput } from '../../../src/fleet/fleet-gc.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const MIN = 60_000;
const ME = 'ci-aaaaaaaaaaaa';
const OTHER = 'ci-bbbbbbbbbbbb';

function machine(o: { id?: string; ageMs?: number; coordinator?: string; executor?: string; state?: MachineState } = {}): Machine {
  const executor = o.executor ?? 'dind';
  return { id: o.id ?? 'm-1', executor, state: o.state ?? 'running', createdAt: NOW - (o.ageMs ?? 60 * MIN), tags: { fleet: 'ci', executor, coordinator: o.coordinator ?? ME } };
}

function plan(m: Machine, over: Partial<PlanGarbageInput> = {}) {
  const [d] = planGarbage({ machines: [m], coordinatorId: ME, executors: ['dind', 'fargate'], coordinatorRunning: false, now: NOW, graceMs: 30 * MIN, ...over });
  return { action: d!.action, reason: d!.reason };
}

describe('planGarbage', () => {
  const cases: Array<{ name: string; m: Machine; over?: Partial<PlanGarbageInput>; reason: GcReason; action: 'keep' | 'remove' }> = [
    { name: 'this deployment, no coordinator, past grace', m: machine(), reason: 'no_coordinator', action: 'remove' },
    { name: 'launched by any task of this deployment: the tag is what counts', m: machine({ id: 'i-0abc', state: 'pending' }), reason: 'no_coordinator', action: 'remove' },
    { name: 'stopping machines are removed too (terminate is idempotent)', m: machine({ state: 'stopping' }), reason: 'no_coordinator', action: 'remove' },
    { name: 'an unmappable state is removed too', m: machine({ state: 'unknown' }), reason: 'no_coordinator', action: 'remove' },
    { name: 'exactly at the grace boundary', m: machine({ ageMs: 30 * MIN }), reason: 'no_coordinator', action: 'remove' },
    { name: 'younger than the grace period', m: machine({ ageMs: 30 * MIN - 1 }), reason: 'within_grace', action: 'keep' },
    { name: 'created in the future (clock skew) counts as young', m: machine({ ageMs: -5 * MIN }), reason: 'within_grace', action: 'keep' },
    { name: 'grace 0 removes even a new machine', m: machine({ ageMs: 0 }), over: { graceMs: 0 }, reason: 'no_coordinator', action: 'remove' },
    { name: 'an executor no longer in the config', m: machine({ executor: 'old' }), reason: 'unknown_executor', action: 'remove' },
    { name: 'an unknown executor inside the grace period is still kept', m: machine({ executor: 'old', ageMs: MIN }), reason: 'within_grace', action: 'keep' },
    { name: 'another deployment, no coordinator: never touched', m: machine({ coordinator: OTHER }), reason: 'other_deployment', action: 'keep' },
    { name: 'another deployment, even with --force (unknown treated as none)', m: machine({ coordinator: OTHER, executor: 'old' }), over: { coordinatorRunning: false, graceMs: 0 }, reason: 'other_deployment', action: 'keep' },
    { name: 'another deployment, terminated', m: machine({ coordinator: OTHER, state: 'terminated' }), reason: 'other_deployment', action: 'keep' },
    { name: 'a coordinator of this deployment runs', m: machine(), over: { coordinatorRunning: true }, reason: 'running_coordinator', action: 'keep' },
    { name: 'a running coordinator also explains unknown executors (it may run an older config)', m: machine({ executor: 'old' }), over: { coordinatorRunning: true }, reason: 'running_coordinator', action: 'keep' },
    { name: 'cannot tell whether a coordinator runs', m: machine(), over: { coordinatorRunning: 'unknown' }, reason: 'coordinator_unknown', action: 'keep' },
    { name: 'already terminated', m: machine({ state: 'terminated' }), reason: 'already_gone', action: 'keep' },
    { name: 'already terminated while a coordinator runs', m: machine({ state: 'terminated' }), over: { coordinatorRunning: true }, reason: 'already_gone', action: 'keep' },
  ];
  it.each(cases)('$name → $action ($reason)', ({ m, over, reason, action }) => {
    expect(plan(m, over)).toEqual({ action, reason });
  });

  it('one decision per machine, in order, the machine itself carried', () => {
    const ms = [machine({ id: 'a' }), machine({ id: 'b', coordinator: OTHER }), machine({ id: 'c', ageMs: MIN })];
    const ds = planGarbage({ machines: ms, coordinatorId: ME, executors: ['dind'], coordinatorRunning: false, now: NOW, graceMs: 30 * MIN });
    expect(ds.map((d) => [d.machine, d.action, d.reason])).toEqual([
      [ms[0], 'remove', 'no_coordinator'],
      [ms[1], 'keep', 'other_deployment'],
      [ms[2], 'keep', 'within_grace'],
    ]);
    expect(planGarbage({ machines: [], coordinatorId: ME, executors: [], coordinatorRunning: 'unknown', now: NOW, graceMs: 0 })).toEqual([]);
  });

  it('every reason has a sentence and an action matching the decisions', () => {
    for (const [reason, r] of Object.entries(GC_REASONS)) {
      expect(r.text.length, reason).toBeGreaterThan(10);
      expect(['keep', 'remove']).toContain(r.action);
    }
    expect(Object.keys(GC_REASONS).sort()).toEqual(
      ['already_gone', 'coordinator_unknown', 'no_coordinator', 'other_deployment', 'running_coordinator', 'unknown_executor', 'within_grace'],
    );
  });
});
