import { describe, expect, it } from 'vitest';

import type { Logger } from '../../../src/core/index.js';
import { isGone, toMachineState } from '../../../src/providers/ec2/instance-state.js';

describe('EC2 state → machine state', () => {
  it.each([
    ['pending', 'pending', false],
    ['running', 'running', false],
    ['stopping', 'stopping', true],
    ['shutting-down', 'stopping', true],
    ['stopped', 'stopping', true],
    ['terminated', 'terminated', true],
  ])('%s → %s', (ec2, machine, gone) => {
    expect(toMachineState(ec2)).toBe(machine);
    expect(isGone(ec2)).toBe(gone);
  });

  it('an unknown or missing state is "unknown" and logged, never guessed', () => {
    const lines: Array<{ fields: Record<string, unknown>; msg: string }> = [];
    const log = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as unknown as Logger;
    expect(toMachineState('hibernating', log, 'i-1')).toBe('unknown');
    expect(toMachineState(undefined, log, 'i-2')).toBe('unknown');
    expect(lines).toEqual([
      { fields: { instance: 'i-1', ec2State: 'hibernating' }, msg: 'unknown EC2 instance state: reported as unknown' },
      { fields: { instance: 'i-2', ec2State: undefined }, msg: 'unknown EC2 instance state: reported as unknown' },
    ]);
  });
});
