import { describe, expect, it } from 'vitest';

import { decideTaskSize, isValidFargateSize } from '../../../src/core/index.js';
import { taskSizeFromVariables } from '../../../src/jobs/task-size.js';

const vars = (o: Record<string, string>) => Object.entries(o).map(([key, value]) => ({ key, value }));
const bounds = { cpu: { default: 1024, min: 256, max: 4096 }, memoryMiB: { default: 2048, min: 512, max: 30720 } };

describe('FLEETRUNNER_CPU / FLEETRUNNER_MEMORY', () => {
  it.each([
    [{}, { ok: true }],
    [{ FLEETRUNNER_CPU: '0.25' }, { ok: true, cpuUnits: 256 }],
    [{ FLEETRUNNER_CPU: '2', FLEETRUNNER_MEMORY: '4096' }, { ok: true, cpuUnits: 2048, memoryMiB: 4096 }],
    [{ FLEETRUNNER_MEMORY: '512Mi' }, { ok: true, memoryMiB: 512 }],
    [{ FLEETRUNNER_MEMORY: '4Gi' }, { ok: true, memoryMiB: 4096 }],
    [{ FLEETRUNNER_MEMORY: '0.5G' }, { ok: true, memoryMiB: 512 }],
    [{ FLEETRUNNER_CPU: '' }, { ok: true }],
  ])('%o parses as %o', (v, want) => {
    expect(taskSizeFromVariables(vars(v))).toEqual(want);
  });

  it.each([
    [{ FLEETRUNNER_CPU: 'lots' }, 'FLEETRUNNER_CPU must be a number of vCPUs'],
    [{ FLEETRUNNER_CPU: '0.3' }, 'not a whole number of CPU units'],
    [{ FLEETRUNNER_CPU: '-1' }, 'FLEETRUNNER_CPU must be'],
    [{ FLEETRUNNER_MEMORY: '4 TB' }, 'FLEETRUNNER_MEMORY must be MiB'],
  ])('%o is refused: %s', (v, why) => {
    const r = taskSizeFromVariables(vars(v));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(why);
  });
});

describe('Fargate task sizes', () => {
  it.each([
    [256, 512, true], [256, 1536, false], [256, 2048, true], [512, 4096, true], [1024, 1024, false],
    [4096, 30720, true], [8192, 20480, true], [8192, 18432, false], [16384, 122880, true], [3072, 8192, false],
  ])('%i CPU units with %i MiB: %s', (cpu, mem, ok) => {
    expect(isValidFargateSize(cpu, mem)).toBe(ok);
  });

  it('takes the default, fits the memory to an asked CPU, and names why a size is refused', () => {
    expect(decideTaskSize({}, bounds)).toEqual({ ok: true, size: { cpu: 1024, memoryMiB: 2048 } });
    expect(decideTaskSize({ cpuUnits: 4096 }, bounds)).toEqual({ ok: true, size: { cpu: 4096, memoryMiB: 8192 } });
    expect(decideTaskSize({ cpuUnits: 256 }, bounds)).toEqual({ ok: true, size: { cpu: 256, memoryMiB: 2048 } });
    expect(decideTaskSize({ cpuUnits: 3072 }, bounds)).toMatchObject({ ok: false, reason: expect.stringContaining('3072 CPU units is not a Fargate size') });
    expect(decideTaskSize({ cpuUnits: 8192 }, bounds)).toMatchObject({ ok: false, reason: expect.stringContaining('outside this executor\'s bounds (256–4096)') });
    expect(decideTaskSize({ memoryMiB: 65536 }, bounds)).toMatchObject({ ok: false, reason: expect.stringContaining('65536 MiB of memory is outside') });
    expect(decideTaskSize({ cpuUnits: 256, memoryMiB: 4096 }, bounds)).toMatchObject({ ok: false, reason: 'Fargate has no task with 256 CPU units and 4096 MiB (with 256 CPU units: 512, 1024, 2048 MiB)' });
  });
});
