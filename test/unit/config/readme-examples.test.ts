// The README's YAML examples are what users copy: each one must pass `fleetrunner validate`. A fragment
// (an executors list without the rest) gets the smallest remainder added around it; nothing in the
// fragment itself is changed.
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { compileConfig } from '../../../src/config/index.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

const ec2Minimal = { instanceTypes: ['c6i.large'], subnets: ['subnet-0123abcd'] };

function completed(doc: Record<string, unknown>): Record<string, unknown> {
  const executors = (doc.executors as Array<Record<string, unknown>>).map((e) => (e.provider === 'ec2' && !e.ec2 ? { ...e, ec2: ec2Minimal } : e));
  return { gitlab: { url: 'https://gitlab.example.com', token: `glrt-${'x'.repeat(20)}` }, concurrent: 4, ...doc, executors };
}

describe('README YAML examples', () => {
  it('has examples with executors, among them the idle pool with a schedule', () => {
    expect(blocks.filter((b) => b.includes('executors:')).length).toBeGreaterThanOrEqual(2);
    expect(blocks.some((b) => b.includes('schedules:'))).toBe(true);
  });

  for (const [i, block] of blocks.entries()) {
    if (!block.includes('executors:')) continue;
    it(`example ${i + 1} (${block.split('\n')[0]!.slice(0, 60)}) validates`, () => {
      const doc = parseYaml(block.replace(/\$\{[A-Z_]+\}/g, 'from-env')) as Record<string, unknown>;
      const config = compileConfig(completed(doc), {});
      expect(config.executors.length).toBeGreaterThan(0);
      if (block.includes('schedules:')) {
        const pool = config.executors[0]!.pool;
        expect(pool.schedules[0]!.timezone).toBe('Europe/Berlin');
        expect(pool.schedules[0]!.idleCount).toBe(3);
        expect(pool.idleTimeMs).toBe(15 * 60_000);
      }
    });
  }
});
