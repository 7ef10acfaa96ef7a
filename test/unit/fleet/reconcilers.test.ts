// The fleet's pure decisions, table-driven: the pool with named reasons, boot deadlines, garbage collection
// as a set difference, adoption, handing machines out and taking them back, and what a failure's class
// makes the fleet do. Records are built in a real MachineTable on a stepped clock.
import { describe, expect, it } from 'vitest';

import { InsufficientCapacityError, PermanentError, RetryableError } from '../../../src/core/errors.js';
import type { Machine } from '../../../src/core/machine.js';
import { classifyFailure, decideRetry, poolRetryDelay, type FailureClass, type RetryInput } from '../../../src/fleet/create-failure.js';
import { decideHandout, decideRelease, type ReleaseInput } from '../../../src/fleet/handout.js';
import type { MachinePhase } from '../../../src/fleet/machine-phases.js';
import { MachineTable, type Purpose } from '../../../src/fleet/machine-table.js';
import { CREATE_SKEW_MS, decideAdoption, decideBootTimeouts, decideGarbage, decidePool, type AdoptionInput } from '../../../src/fleet/reconcilers.js';
import { StepClock } from '../../helpers/step-clock.js';

const MIN = 60_000;
const conn = { host: 'h', port: 22, username: 'u', privateKey: 'k', hostPublicKey: 'p', buildsDir: '/b', cacheDir: '/c', stateDir: '/s' };
const machine = (id: string, createdAt = 0, state: Machine['state'] = 'running'): Machine => ({ id, executor: 'e', state, createdAt, tags: { fleet: 'f', executor: 'e', coordinator: 'c' } });
const settings = { idleCount: 0, idleTimeMs: 10 * MIN, scaleFactor: 0 };

const PATH: Record<MachinePhase, MachinePhase[]> = {
  booting: [],
  warming: ['warming'],
  idle: ['warming', 'idle'],
  busy: ['busy'],
  returning: ['busy', 'returning'],
  removing: ['removing'],
  gone: ['removing', 'gone'],
};

/** A table on a stepped clock; `put` creates a machine and walks it to a phase at the clock's time. */
function fixture() {
  const clock = new StepClock();
  const table = new MachineTable();
  const put = (id: string, phase: MachinePhase, purpose: Purpose = 'pool') => {
    table.endCreate(table.beginCreate(purpose, clock.now()), machine(id, clock.now()), clock.now());
    let at: MachinePhase = 'booting';
    for (const next of PATH[phase]) {
      table.transition(id, at, next, next === 'removing' ? 'shutdown' : 'ready', clock.now(), { connection: conn });
      at = next;
    }
  };
  return { clock, table, put };
}

describe('decidePool', () => {
  it.each([
    { name: 'nothing to do without a target', idle: [] as number[], busy: 0, max: 10, idleCount: 0, want: { create: 0, remove: [] as string[] } },
    { name: 'boots up to idleCount', idle: [], busy: 0, max: 10, idleCount: 2, want: { create: 2, remove: [] } },
    { name: 'keeps excess idle machines until idleTime', idle: [5], busy: 0, max: 10, idleCount: 0, want: { create: 0, remove: [] } },
    { name: 'removes an excess machine idle past idleTime: idle_time', idle: [11], busy: 0, max: 10, idleCount: 0, want: { create: 0, remove: ['i0:idle_time'] } },
    { name: 'removes machines over the cap at once, idle time or not: over_cap', idle: [11, 1, 12], busy: 2, max: 3, idleCount: 0, want: { create: 0, remove: ['i2:over_cap', 'i0:over_cap'] } },
    { name: 'the longest idle go for the cap, the rest for idle time', idle: [11, 13, 12], busy: 2, max: 4, idleCount: 0, want: { create: 0, remove: ['i1:over_cap', 'i2:idle_time', 'i0:idle_time'] } },
  ])('$name', async ({ idle, busy, max, idleCount, want }) => {
    const { clock, table, put } = fixture();
    // Machine i<n> became idle `idle[n]` minutes before the decision.
    const order = idle.map((m, i) => ({ m, i })).sort((a, b) => b.m - a.m);
    let at = 0;
    for (const { m, i } of order) {
      await clock.advance((order[0]!.m - m - at) * MIN);
      at = order[0]!.m - m;
      put(`i${i}`, 'idle');
    }
    await clock.advance((order.length ? order[order.length - 1]!.m : 0) * MIN);
    for (let b = 0; b < busy; b++) put(`b${b}`, 'busy', 'job');
    const d = decidePool(table.all(), table.creating(), { ...settings, idleCount }, { maxMachines: max }, clock.now());
    expect({ create: d.create, remove: d.remove.map((r) => `${r.id}:${r.reason}`) }).toEqual(want);
  });

  it('counts warming, returning and pool creations as on their way to idle; job boots and removals as busy', () => {
    const { clock, table, put } = fixture();
    put('w', 'warming');
    put('r', 'returning');
    table.beginCreate('pool', clock.now());
    put('j', 'booting', 'job');
    put('x', 'removing');
    table.beginCreate('job', clock.now());
    // 3 busy, 3 on their way: idleCount 4 wants one more; maxMachines 6 leaves no room for it.
    expect(decidePool(table.all(), table.creating(), { ...settings, idleCount: 4 }, { maxMachines: 10 }, clock.now()).create).toBe(1);
    expect(decidePool(table.all(), table.creating(), { ...settings, idleCount: 4 }, { maxMachines: 6 }, clock.now()).create).toBe(0);
  });

  it('leaves the next free slot to a job waiting at the cap, but never removes for it', () => {
    const { clock, table, put } = fixture();
    put('b', 'busy', 'job');
    put('i', 'idle');
    // idleCount 3 wants two more; one slot of the three free is a waiting job's.
    expect(decidePool(table.all(), table.creating(), { ...settings, idleCount: 3 }, { maxMachines: 5 }, clock.now(), 1)).toMatchObject({ create: 2, remove: [] });
    expect(decidePool(table.all(), table.creating(), { ...settings, idleCount: 3 }, { maxMachines: 4 }, clock.now(), 1)).toMatchObject({ create: 1, remove: [] });
    expect(decidePool(table.all(), table.creating(), { ...settings, idleCount: 3 }, { maxMachines: 2 }, clock.now(), 3)).toMatchObject({ create: 0, remove: [] });
  });
});

describe('decideBootTimeouts', () => {
  it.each([
    ['booting', true],
    ['warming', true],
    ['returning', true],
    ['idle', false],
    ['busy', false],
    ['removing', false],
  ] as const)('%s past the deadline: removed %s', async (phase, removed) => {
    const { clock, table, put } = fixture();
    put('m', phase);
    await clock.advance(2 * MIN - 1);
    expect(decideBootTimeouts(table.all(), 2 * MIN, clock.now())).toEqual([]);
    await clock.advance(1);
    expect(decideBootTimeouts(table.all(), 2 * MIN, clock.now())).toEqual(removed ? [{ id: 'm', reason: 'boot_timeout' }] : []);
    expect(decideBootTimeouts(table.all(), undefined, clock.now())).toEqual([]);
  });

  it('measures from the move into the phase, not from creation', async () => {
    const { clock, table, put } = fixture();
    put('m', 'busy');
    await clock.advance(10 * MIN);
    table.transition('m', 'busy', 'returning', 'released', clock.now());
    await clock.advance(MIN);
    expect(decideBootTimeouts(table.all(), 2 * MIN, clock.now())).toEqual([]);
  });
});

describe('decideGarbage (provider list minus table)', () => {
  // The table holds `idle1` (idle) and `rm` (removing); the clock is an hour on. `rm` is listed in every
  // case but the last two.
  const rm = machine('rm', 59 * MIN);
  it.each([
    { name: 'an unexplained machine past the grace is an orphan', listed: [machine('o', 0), rm], want: { orphans: ['o'], retry: ['rm'] } },
    { name: 'an unexplained machine within the grace is kept', listed: [machine('y', 55 * MIN), rm], want: { kept: ['y:within_grace'], retry: ['rm'] } },
    { name: 'a machine launched in the future (clock skew) is young', listed: [machine('f', 99 * MIN), rm], want: { kept: ['f:within_grace'], retry: ['rm'] } },
    { name: 'a terminated machine is nothing to do', listed: [machine('t', 0, 'terminated'), rm], want: { retry: ['rm'] } },
    { name: 'a machine in the table is explained', listed: [machine('idle1', 0), rm], want: { retry: ['rm'] } },
    { name: 'a removing machine still listed is retried, whatever its age', listed: [rm], want: { retry: ['rm'] } },
    { name: 'a removing machine no longer listed is gone', listed: [], want: { gone: ['rm'] } },
    { name: 'a removing machine listed as terminated is gone', listed: [machine('rm', 0, 'terminated')], want: { gone: ['rm'] } },
  ])('$name', async ({ listed, want }) => {
    const { clock, table, put } = fixture();
    put('idle1', 'idle');
    put('rm', 'removing');
    await clock.advance(60 * MIN);
    const base = clock.now() - 60 * MIN;
    const d = decideGarbage({ listed: listed.map((m) => ({ ...m, createdAt: base + m.createdAt })), records: table.all(), creating: [], now: clock.now(), graceMs: 10 * MIN });
    expect({
      orphans: d.orphans.map((o) => (expect(o.reason).toBe('orphan'), o.id)),
      retry: d.retry,
      gone: d.gone,
      kept: d.kept.map((k) => `${k.id}:${k.reason}`),
    }).toEqual({ orphans: [], retry: [], gone: [], kept: [], ...want });
  });

  it('keeps an unexplained machine launched after one of our creations started (it may be that creation)', async () => {
    const { clock, table } = fixture();
    await clock.advance(30 * MIN);
    table.beginCreate('job', clock.now());
    await clock.advance(30 * MIN);
    const listed = [machine('late', clock.now() - 30 * MIN - CREATE_SKEW_MS), machine('early', clock.now() - 30 * MIN - CREATE_SKEW_MS - 1)];
    const d = decideGarbage({ listed, records: table.all(), creating: table.creating(), now: clock.now(), graceMs: 10 * MIN });
    expect(d.kept).toEqual([{ id: 'late', reason: 'creation_in_flight' }]);
    expect(d.orphans).toEqual([{ id: 'early', reason: 'orphan' }]);
  });
});

describe('decideAdoption', () => {
  const base: AdoptionInput = { known: false, as: 'idle', total: 1, maxMachines: 2, poolStopped: false, shutDown: false };
  it.each([
    [{}, { accept: true }],
    [{ known: true }, { accept: false, reason: 'known' }],
    [{ total: 2 }, { accept: false, reason: 'over_cap' }],
    [{ total: 2, as: 'busy' }, { accept: true }],
    [{ poolStopped: true }, { accept: false, reason: 'shutdown' }],
    [{ poolStopped: true, as: 'busy' }, { accept: true }],
    [{ shutDown: true, as: 'busy' }, { accept: false, reason: 'shutdown' }],
  ] as const)('%o → %o', (change, want) => {
    expect(decideAdoption({ ...base, ...change })).toEqual(want);
  });
});

describe('decideHandout', () => {
  it('takes the machine idle the shortest, creates below the cap, waits at it', async () => {
    const { clock, table, put } = fixture();
    expect(decideHandout({ records: table.all(), total: 0, maxMachines: 1 })).toEqual({ kind: 'create' });
    put('old', 'idle');
    await clock.advance(MIN);
    put('new', 'idle');
    expect(decideHandout({ records: table.all(), total: 2, maxMachines: 2 })).toEqual({ kind: 'take', id: 'new' });
    put('b', 'busy');
    const busyOnly = table.all().filter((r) => r.phase === 'busy');
    expect(decideHandout({ records: busyOnly, total: 3, maxMachines: 3 })).toEqual({ kind: 'wait' });
  });

  it('for a market, never an idle machine: a new one, or room made by removing the longest idle', async () => {
    const { clock, table, put } = fixture();
    put('old', 'idle');
    await clock.advance(MIN);
    put('new', 'idle');
    expect(decideHandout({ records: table.all(), total: 2, maxMachines: 3, market: 'on-demand' })).toEqual({ kind: 'create' });
    expect(decideHandout({ records: table.all(), total: 2, maxMachines: 2, market: 'on-demand' })).toEqual({ kind: 'make_room', id: 'old' });
  });
});

describe('decideRelease', () => {
  const base: ReleaseInput = { reusable: true, uses: 1, maxUseCount: 3, hasConnection: true, poolStopped: false, total: 2, maxMachines: 2 };
  it.each([
    [{}, { kind: 'return' }],
    [{ reason: 'interrupted' }, { kind: 'remove', reason: 'interrupted' }],
    [{ reusable: false, reason: 'unclean' }, { kind: 'remove', reason: 'unclean' }],
    [{ reusable: false }, { kind: 'remove', reason: 'not_reusable' }],
    [{ hasConnection: false }, { kind: 'remove', reason: 'not_reusable' }],
    [{ uses: 3 }, { kind: 'remove', reason: 'max_uses' }],
    [{ poolStopped: true }, { kind: 'remove', reason: 'shutdown' }],
    [{ total: 3 }, { kind: 'remove', reason: 'over_cap' }],
  ] as const)('%o → %o', (change, want) => {
    expect(decideRelease({ ...base, ...change })).toEqual(want);
  });
});

describe('failures by class', () => {
  it.each([
    [[new PermanentError('AccessDenied')], 'permanent'],
    [[new InsufficientCapacityError('none'), new PermanentError('bad AMI')], 'permanent'],
    [[new InsufficientCapacityError('none')], 'capacity'],
    [[new InsufficientCapacityError('none'), new RetryableError('5xx')], 'retryable'],
    [[new RetryableError('RequestLimitExceeded')], 'retryable'],
    [[new Error('sshd did not start')], 'unclassified'],
    [[], 'unclassified'],
  ] as const)('%o is %s', (errors, cls) => {
    expect(classifyFailure(errors)).toBe(cls);
  });

  const r = (stage: RetryInput['stage'], cls: FailureClass, attempt: number): RetryInput => ({ stage, cls, attempt, maxAttempts: 3, retryDelayMs: 1000 });
  it.each([
    [r('create', 'permanent', 1), { kind: 'fail', reason: 'permanent' }],
    [r('boot', 'permanent', 1), { kind: 'fail', reason: 'permanent' }],
    [r('create', 'capacity', 1), { kind: 'retry', delayMs: 0, reason: 'capacity' }],
    [r('create', 'capacity', 3), { kind: 'fail', reason: 'attempts_exhausted' }],
    [r('boot', 'retryable', 1), { kind: 'retry', delayMs: 0, reason: 'boot_failed' }],
    [r('create', 'retryable', 1), { kind: 'retry', delayMs: 1000, reason: 'backoff' }],
    [r('create', 'unclassified', 2), { kind: 'retry', delayMs: 2000, reason: 'backoff' }],
    [{ ...r('create', 'retryable', 7), maxAttempts: 10 }, { kind: 'retry', delayMs: 5000, reason: 'backoff' }],
  ] as const)('%o → %o', (input, want) => {
    expect(decideRetry(input)).toEqual(want);
  });

  it.each([
    [1, 'retryable', 5_000],
    [2, 'unclassified', 10_000],
    [8, 'capacity', 300_000],
    [1, 'permanent', 300_000],
  ] as const)('pool retry after %i failures (%s): %i ms', (failures, cls, ms) => {
    expect(poolRetryDelay(failures, cls)).toBe(ms);
  });
});
