import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { reconfigureExecutorGates, startExecutorGates } from '../../../src/cli/preflight.js';
import { parseConfigText } from '../../../src/config/index.js';
import type { Clock } from '../../../src/core/clock.js';
import type { Logger } from '../../../src/core/logger.js';
import type { CheckResult } from '../../../src/core/preflight.js';
import { DEFAULT_GATE_RETRY_MS, DEFAULT_GATE_REVALIDATE_MS, ExecutorGate, ExecutorGates } from '../../../src/fleet/executor-gate.js';

class ManualClock implements Clock {
  constructor(public t = 1_000_000) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
  }
}

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function recorder(lines: Line[]): Logger {
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, fields, msg });
  const l: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}

const pass = (check: string): CheckResult => ({ executor: 'dind', check, target: 't', status: 'pass' });
const fail = (check: string, code: string, retryable = false): CheckResult => ({ executor: 'dind', check, target: 'subnet-0fff9999 × c6i.xlarge (spot)', status: 'fail', code, message: 'nope', retryable });

function gate(answers: Array<CheckResult[] | Error>, o: { retryMs?: number; revalidateMs?: number } = {}) {
  const clock = new ManualClock();
  const lines: Line[] = [];
  let calls = 0;
  const g = new ExecutorGate({
    executor: 'dind',
    check: async () => {
      const a = answers[Math.min(calls++, answers.length - 1)]!;
      if (a instanceof Error) throw a;
      return a;
    },
    clock,
    logger: recorder(lines),
    ...o,
  });
  return { g, clock, lines, calls: () => calls };
}

describe('ExecutorGate', () => {
  it('takes no jobs until a check passed; a failing executor is re-checked every retryMs, and opens once it passes', async () => {
    const { g, clock, lines, calls } = gate([[pass('aws-credentials'), fail('run-instances', 'InvalidSubnetID.NotFound')], [pass('aws-credentials'), pass('run-instances')]]);
    const changes: string[] = [];
    g.onChange((x) => changes.push(x.state));
    expect(g.state).toBe('unchecked');
    expect(g.available).toBe(false);
    expect(g.reason).toBe('preflight checks not finished yet');

    await g.tick();
    expect(g.state).toBe('unavailable');
    expect(g.reason).toBe('run-instances subnet-0fff9999 × c6i.xlarge (spot): InvalidSubnetID.NotFound: nope');
    expect(g.failures).toHaveLength(1);
    expect(g.nextCheckAt).toBe(clock.t + DEFAULT_GATE_RETRY_MS);
    expect(lines.at(-1)).toMatchObject({
      level: 'error',
      msg: 'executor failed its preflight checks: it takes no jobs until they pass',
      fields: { executor: 'dind', failing: ['run-instances subnet-0fff9999 × c6i.xlarge (spot): InvalidSubnetID.NotFound: nope'], retryInS: 180 },
    });

    clock.t += DEFAULT_GATE_RETRY_MS - 1;
    await g.tick();
    expect(calls()).toBe(1);
    clock.t += 1;
    await g.tick();
    expect(calls()).toBe(2);
    expect(g.available).toBe(true);
    expect(g.reason).toBeUndefined();
    expect(changes).toEqual(['unavailable', 'available']);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'executor passed its preflight checks: taking jobs again' });
    expect(g.nextCheckAt).toBe(clock.t + DEFAULT_GATE_REVALIDATE_MS);
  });

  it('an available executor stays available when a re-check fails only for passing reasons, and closes on a lasting one', async () => {
    const { g, clock, lines } = gate(
      [[pass('run-instances')], [fail('run-instances', 'RequestLimitExceeded', true)], [fail('run-instances', 'UnauthorizedOperation')]],
      { retryMs: 60_000, revalidateMs: 600_000 },
    );
    await g.check();
    expect(g.available).toBe(true);
    clock.t += 600_000;
    await g.tick();
    expect(g.available).toBe(true);
    expect(lines.at(-1)!.level).toBe('warn');
    expect(g.nextCheckAt).toBe(clock.t + 60_000); // sooner than revalidateMs after a failure
    clock.t += 60_000;
    await g.tick();
    expect(g.available).toBe(false);
    expect(g.reason).toContain('UnauthorizedOperation');
  });

  it('a transient failure on the first check still keeps it closed (nothing is known to work yet)', async () => {
    const { g } = gate([[fail('aws-credentials', 'Timeout', true)]]);
    await g.check();
    expect(g.state).toBe('unavailable');
  });

  it('concurrent checks share one run; a check that throws is one failed check; revalidateMs 0 never re-checks a passing gate', async () => {
    const { g, calls } = gate([new Error('boom')]);
    await Promise.all([g.check(), g.check(), g.tick()]);
    expect(calls()).toBe(1);
    expect(g.failures).toEqual([{ executor: 'dind', check: 'preflight', target: 'dind', status: 'fail', code: 'Error', message: 'boom' }]);

    const once = gate([[pass('sshd')]], { revalidateMs: 0 });
    await once.g.tick();
    expect(once.g.nextCheckAt).toBe(Infinity);
    once.clock.t += 365 * 24 * 3600_000;
    await once.g.tick();
    expect(once.calls()).toBe(1);
  });
});

describe('ExecutorGates / startExecutorGates', () => {
  const config = parseConfigText(`gitlab:
  url: https://gitlab.example.com
  token: glrt-${randomBytes(12).toString('hex')}
concurrent: 2
executors:
  - name: dind
    provider: ec2
    maxMachines: 2
    ec2: { subnets: [subnet-0aaa1111], instanceTypes: [c6i.xlarge] }
  - name: local
    provider: local
    maxMachines: 2
`);

  it('checks every executor before resolving, and tells which take no jobs and why', async () => {
    const clock = new ManualClock();
    const lines: Line[] = [];
    const checked: string[] = [];
    const gates = await startExecutorGates(config, {
      fleet: 'test',
      clock,
      logger: recorder(lines),
      check: async (e) => {
        checked.push(e.name);
        return e.name === 'dind' ? [fail('run-instances', 'UnauthorizedOperation')] : [{ executor: 'local', check: 'sshd', target: '/usr/sbin/sshd', status: 'pass' }];
      },
    });
    expect(checked.sort()).toEqual(['dind', 'local']);
    expect(gates.isAvailable('local')).toBe(true);
    expect(gates.isAvailable('dind')).toBe(false);
    expect(gates.isAvailable('not-gated')).toBe(true);
    expect(gates.unavailable()).toEqual([{ executor: 'dind', reason: 'run-instances subnet-0fff9999 × c6i.xlarge (spot): UnauthorizedOperation: nope' }]);
    const seen: string[] = [];
    gates.onChange((g) => seen.push(`${g.executor}:${g.state}`));
    clock.t += DEFAULT_GATE_RETRY_MS;
    await gates.tick();
    expect(checked.filter((n) => n === 'dind')).toHaveLength(2);
    expect(checked.filter((n) => n === 'local')).toHaveLength(1); // not due: passing gates re-check after 15 min
    expect(seen).toEqual([]);
  });

  it('after a config reload each gate checks the new settings on the next tick', async () => {
    const clock = new ManualClock();
    const gates = await startExecutorGates(config, { fleet: 'test', clock, logger: recorder([]), check: async (e) => (e.name === 'dind' ? [fail('run-instances', 'InvalidSubnetID.NotFound')] : []) });
    expect(gates.isAvailable('dind')).toBe(false);
    const reloaded = parseConfigText(`gitlab:
  url: https://gitlab.example.com
  token: glrt-${randomBytes(12).toString('hex')}
concurrent: 2
executors:
  - name: dind
    provider: ec2
    maxMachines: 2
    ec2: { subnets: [subnet-0bbb2222], instanceTypes: [c6i.xlarge] }
`);
    const seen: string[] = [];
    reconfigureExecutorGates(gates, reloaded, { fleet: 'test', clock, logger: recorder([]), check: async (e) => (seen.push(e.ec2!.subnets.join()), []) });
    await gates.tick(); // no time passed: due because of the reload
    expect(seen).toEqual(['subnet-0bbb2222']);
    expect(gates.isAvailable('dind')).toBe(true);
  });

  it('skipChecks (providers replaced by a test seam): every gate open, nothing checked', async () => {
    let called = 0;
    const gates = await startExecutorGates(config, {
      fleet: 'test',
      clock: new ManualClock(),
      logger: recorder([]),
      skipChecks: true,
      check: async () => {
        called++;
        return [];
      },
    });
    expect(called).toBe(0);
    expect(gates.all().map((g) => g.available)).toEqual([true, true]);
    expect(gates).toBeInstanceOf(ExecutorGates);
  });
});
