// The machine table: every move not in LEGAL_MOVES is refused (all pairs), stale moves are refused, counts
// come from the records and the creations in flight only.
import { describe, expect, it } from 'vitest';

import type { Machine } from '../../../src/core/machine.js';
import { ENTRY_PHASES, LEGAL_MOVES, MACHINE_PHASES, MachineTransitionError, type MachinePhase } from '../../../src/fleet/machine-phases.js';
import { MachineTable } from '../../../src/fleet/machine-table.js';
import { StepClock } from '../../helpers/step-clock.js';

const conn = { host: 'h', port: 22, username: 'u', privateKey: 'k', hostPublicKey: 'p', buildsDir: '/b', cacheDir: '/c', stateDir: '/s' };
const machine = (id: string): Machine => ({ id, executor: 'e', state: 'running', createdAt: 0, tags: { fleet: 'f', executor: 'e', coordinator: 'c' } });

/** A table holding machine `m` in `phase`, reached by legal moves only ('gone': it was removed and forgotten). */
function tableWith(phase: MachinePhase, clock = new StepClock()): MachineTable {
  const t = new MachineTable();
  const now = clock.now();
  const path: Record<MachinePhase, MachinePhase[]> = {
    booting: [],
    warming: ['warming'],
    idle: ['warming', 'idle'],
    busy: ['busy'],
    returning: ['busy', 'returning'],
    removing: ['removing'],
    gone: ['removing', 'gone'],
  };
  t.endCreate(t.beginCreate('pool', now), machine('m'), now);
  let at: MachinePhase = 'booting';
  for (const next of path[phase]) {
    t.transition('m', at, next, next === 'removing' ? 'shutdown' : 'ready', now, { connection: conn });
    at = next;
  }
  return t;
}

const pairs = MACHINE_PHASES.flatMap((from) => MACHINE_PHASES.map((to) => [from, to] as const));
const illegal = pairs.filter(([from, to]) => !LEGAL_MOVES[from].includes(to));
const legal = pairs.filter(([from, to]) => LEGAL_MOVES[from].includes(to));

describe('MachineTable transitions', () => {
  it('has both kinds of pair to test, and gone is terminal', () => {
    expect(illegal.length + legal.length).toBe(MACHINE_PHASES.length ** 2);
    expect(LEGAL_MOVES.gone).toEqual([]);
    for (const p of MACHINE_PHASES) if (p !== 'gone' && p !== 'removing') expect(LEGAL_MOVES[p]).toContain('removing');
  });

  it.each(illegal)('refuses %s → %s, naming from, to and reason, and leaves the record as it was', (from, to) => {
    const t = tableWith(from);
    const before = t.get('m');
    let err: unknown;
    try {
      t.transition('m', from, to, 'idle_time', 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MachineTransitionError);
    const e = err as MachineTransitionError;
    expect(e).toMatchObject({ machineId: 'm', from, to, reason: 'idle_time', illegal: true });
    expect(e.message).toBe(`machine m: illegal move ${from} → ${to} (idle_time)`);
    expect(t.get('m')).toBe(before);
  });

  it.each(legal)('allows %s → %s and records when and why', (from, to) => {
    const clock = new StepClock();
    const t = tableWith(from, clock);
    const r = t.transition('m', from, to, 'taken', clock.now() + 5);
    expect(r).toMatchObject({ phase: to, since: clock.now() + 5, reason: 'taken' });
    expect(t.get('m')).toEqual(to === 'gone' ? undefined : r);
  });

  it('refuses a stale move (the machine is not where the caller thinks), saying where it is', () => {
    const t = tableWith('removing');
    expect(() => t.transition('m', 'idle', 'busy', 'taken', 1)).toThrow(new MachineTransitionError('m', 'idle', 'busy', 'taken', 'removing', false));
    expect(() => t.transition('m', 'idle', 'busy', 'taken', 1)).toThrow('machine m: cannot move idle → busy (taken): it is removing');
    expect(() => t.transition('x', 'idle', 'busy', 'taken', 1)).toThrow('machine x: cannot move idle → busy (taken): it is gone');
  });

  it.each(MACHINE_PHASES.map((p) => [p, ENTRY_PHASES.includes(p)] as const))('a machine joins in %s: %s', (phase, allowed) => {
    const t = new MachineTable();
    const join = () => t.add(machine('n'), phase, 'adopted', { purpose: 'pool', uses: 0 }, 1);
    if (allowed) expect(join()).toMatchObject({ phase, since: 1, reason: 'adopted' });
    else expect(join).toThrow(`machine n: illegal move gone → ${phase} (adopted)`);
  });

  it('refuses a machine it already holds', () => {
    const t = tableWith('idle');
    expect(() => t.add(machine('m'), 'busy', 'adopted', { purpose: 'job', uses: 1 }, 1)).toThrow('machine m: cannot move gone → busy (adopted): it is idle');
  });
});

describe('MachineTable counts', () => {
  it('counts creations in flight by purpose and records by phase, and nothing else', () => {
    const t = new MachineTable();
    const a = t.beginCreate('pool', 0);
    t.beginCreate('job', 0);
    expect(t.total()).toBe(2);
    expect(t.counts()).toMatchObject({ creatingForPool: 1, creatingForJobs: 1, booting: 0 });
    // The machine is counted as booting in the same turn the creation stops counting.
    const r = t.endCreate(a, machine('m'), 0);
    expect(r).toMatchObject({ phase: 'booting', purpose: 'pool', uses: 0, reason: 'created' });
    expect(t.total()).toBe(2);
    expect(t.counts()).toMatchObject({ creatingForPool: 0, creatingForJobs: 1, booting: 1 });
    t.transition('m', 'booting', 'removing', 'boot_failed', 0);
    t.transition('m', 'removing', 'gone', 'terminated', 0);
    expect(t.total()).toBe(1);
    expect(t.counts()).toEqual({ booting: 0, warming: 0, idle: 0, busy: 0, returning: 0, removing: 0, gone: 0, creatingForPool: 0, creatingForJobs: 1 });
  });

  it('a creation that returned no machine just stops counting; one for a job starts with one use', () => {
    const t = new MachineTable();
    expect(t.endCreate(t.beginCreate('pool', 0), undefined, 0)).toBeUndefined();
    expect(t.total()).toBe(0);
    expect(t.endCreate(t.beginCreate('job', 0), machine('j'), 0)).toMatchObject({ purpose: 'job', uses: 1 });
  });
});
