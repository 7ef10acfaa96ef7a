// The EC2 stand-in VM test's place in `npm test`.
import { describe, expect, it } from 'vitest';

import config from '../../../vitest.config.js';

const VM_TEST = 'test/e2e/dind-vm.e2e.test.ts';

describe('npm test (vitest.config.ts)', () => {
  const projects = (config.test?.projects ?? []) as Array<{ test: { name: string; include?: string[]; exclude?: string[]; sequence?: { groupOrder?: number } } }>;
  const byName = (name: string) => projects.find((p) => p.test.name === name)?.test;

  it('runs the VM test in a project of its own, after the rest of the suite', () => {
    const suite = byName('suite');
    const vm = byName('vm');
    expect(suite?.exclude).toContain(VM_TEST);
    expect(vm?.include).toEqual([VM_TEST]);
    expect(vm?.sequence?.groupOrder ?? 0).toBeGreaterThan(suite?.sequence?.groupOrder ?? 0);
  });
});
