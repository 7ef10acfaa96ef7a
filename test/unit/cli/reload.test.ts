import { describe, expect, it } from 'vitest';
import { planReload } from '../../../src/cli/reload.js';
import { parseConfigText } from '../../../src/config/index.js';
import { testToken } from '../../helpers/tokens.js';

const TOKEN = testToken('glrt-');

const base = (over: { concurrent?: number; maxMachines?: number; idleCount?: number; match?: string; url?: string; extraExecutor?: boolean } = {}) =>
  parseConfigText(
    [
      'gitlab:',
      `  url: ${over.url ?? 'http://127.0.0.1:8080'}`,
      '  token: ${TOKEN}',
      `concurrent: ${over.concurrent ?? 4}`,
      'executors:',
      '  - name: local',
      '    provider: local',
      '    style: shell',
      `    maxMachines: ${over.maxMachines ?? 4}`,
      ...(over.idleCount !== undefined ? ['    pool:', `      idleCount: ${over.idleCount}`] : []),
      ...(over.match ? ['    match:', `      images: ["${over.match}"]`] : []),
      ...(over.extraExecutor ? ['  - name: other', '    provider: local', '    style: shell', '    maxMachines: 1'] : []),
      '',
    ].join('\n'),
    { TOKEN },
  );

describe('planReload', () => {
  it('applies concurrent, maxMachines, pool and match; nothing needs a restart', () => {
    const plan = planReload(base(), base({ concurrent: 8, maxMachines: 6, idleCount: 2, match: 'ruby' }));
    expect(plan.needsRestart).toEqual([]);
    expect(plan.changed.sort()).toEqual(['concurrent', 'executors[0].match', 'executors[0].maxMachines', 'executors[0].pool'].sort());
    expect(plan.concurrent).toBe(8);
    expect(plan.executors).toMatchObject([{ name: 'local', maxMachines: 6, pool: { idleCount: 2 }, match: { images: ['ruby'] } }]);
  });

  it('reports what needs a restart and leaves it out', () => {
    const plan = planReload(base(), base({ url: 'http://127.0.0.1:9090', extraExecutor: true }));
    expect(plan.needsRestart).toEqual(expect.arrayContaining(['gitlab', 'executors (added, removed, renamed or reordered)']));
    expect(plan.executors.map((e) => e.name)).toEqual(['local']);
  });

  it('an unchanged file changes nothing', () => {
    expect(planReload(base(), base())).toMatchObject({ changed: [], needsRestart: [] });
  });
});
