import { randomBytes } from 'node:crypto';
// `runGc` (src/cli/gc.ts) with injected providers and leases: exit codes, shared providers, lease states.
import { describe, expect, it } from 'vitest';
import { formatAge, runGc } from '../../../src/cli/gc.js';
import { parseConfigText } from '../../../src/config/index.js';
import type { HeldLease, Lease } from '../../../src/core/lease.js';
import type { CapacityProvider, Machine } from '../../../src/core/machine.js';
import { deploymentIdentity } from '../../../src/gitlab/index.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const clock = { now: () => NOW, sleep: async () => undefined } as never;
const TOKEN = `glrt-${randomBytes(12).toString('hex')}`;
const config = parseConfigText(
  ['gitlab:', '  url: https://gitlab.example.com', `  token: ${TOKEN}`, 'concurrent: 2', 'executors:', '  - {name: a, provider: local, style: shell, maxMachines: 2}', '  - {name: b, provider: local, style: shell, maxMachines: 2}', ''].join('\n'),
  {},
);
const me = deploymentIdentity({ fleet: config.fleet, gitlabUrl: config.gitlab.url, token: TOKEN }).coordinatorId;
const m = (id: string, executor = 'a', coordinator = me): Machine => ({ id, executor, state: 'running', createdAt: NOW - 3_600_000, tags: { fleet: config.fleet, executor, coordinator } });

function fakeProvider(machines: Machine[], o: { listFails?: boolean; terminateFails?: boolean } = {}) {
  const terminated: string[][] = [];
  const p: CapacityProvider = {
    name: 'fake',
    create: async () => ({ machines: [], errors: [] }),
    list: async () => {
      if (o.listFails) throw new Error('DescribeInstances: UnauthorizedOperation');
      return machines;
    },
    waitReady: async () => {
      throw new Error('unused');
    },
    terminate: async (ids) => {
      terminated.push(ids);
      return { errors: o.terminateFails ? ids.map((id) => new Error(`terminate ${id}: InvalidInstanceID`)) : [] };
    },
    shutdown: async () => undefined,
  };
  return { p, terminated };
}

function lease(kind: 'free' | 'busy'): Lease & { released: number } {
  const l = {
    released: 0,
    async acquire(): Promise<HeldLease | undefined> {
      if (kind === 'busy') return undefined;
      return { version: 1, lost: new AbortController().signal, held: () => true, release: async () => void l.released++ };
    },
  };
  return l;
}

async function gc(o: Parameters<typeof runGc>[1]) {
  let out = '';
  const code = await runGc(config, { clock, write: (s) => (out += s), ...o });
  return { code, out };
}

describe('runGc', () => {
  it('one provider shared by two executors: each machine once, terminated once; the lease released', async () => {
    const { p, terminated } = fakeProvider([m('m-1'), m('m-2', 'b'), m('m-3', 'old'), m('m-4', 'a', 'fleetrunner-0123456789ab')]);
    const l = lease('free');
    const r = await gc({ providerFor: () => p, lease: l });
    expect(r.code).toBe(0);
    expect(terminated).toEqual([['m-1', 'm-2', 'm-3']]);
    expect(r.out.match(/^m-1 /gm)).toHaveLength(1);
    expect(r.out).toMatch(/^m-3 +old +running +1h00m +\S+ +remove +unknown_executor$/m);
    expect(r.out).toMatch(/^m-4 .* keep +other_deployment$/m);
    expect(r.out).toContain('removed 3 machines: m-1, m-2, m-3');
    expect(r.out).not.toContain(TOKEN);
    expect(l.released).toBe(1);
  });

  it('a failed terminate exits 1 naming it; a failed listing exits 1 naming the executor', async () => {
    const failing = fakeProvider([m('m-1')], { terminateFails: true });
    const r = await gc({ providerFor: () => failing.p, lease: lease('free') });
    expect(r.code).toBe(1);
    expect(r.out).toContain('error: terminate m-1: InvalidInstanceID');
    const listing = fakeProvider([], { listFails: true });
    const l = await gc({ providerFor: () => listing.p, lease: lease('free') });
    expect(l.code).toBe(1);
    expect(l.out).toContain('error: executor a: listing failed: DescribeInstances: UnauthorizedOperation');
  });

  it('--dry-run terminates nothing; a busy lease keeps everything; no lease means unknown unless --force', async () => {
    const { p, terminated } = fakeProvider([m('m-1')]);
    expect((await gc({ providerFor: () => p, lease: lease('free'), dryRun: true })).out).toContain('dry run: 1 to remove, 0 kept; nothing terminated');
    const busy = await gc({ providerFor: () => p, lease: lease('busy') });
    expect(busy.out).toMatch(/^m-1 .* keep +coordinator_unknown$/m); // busy without a holder seen: the store did not answer
    const none = await gc({ providerFor: () => p });
    expect(none.out).toMatch(/^m-1 .* keep +coordinator_unknown$/m);
    expect(terminated).toEqual([]);
    const forced = await gc({ providerFor: () => p, force: true });
    expect(forced.out).toContain('(--force: treated as none running)');
    expect(terminated).toEqual([['m-1']]);
  });

  it('formats ages', () => {
    expect([0, 45_000, 725_000, 3 * 3_600_000 + 7 * 60_000, 52 * 3_600_000, -5].map(formatAge)).toEqual(['0s', '45s', '12m05s', '3h07m', '2d04h', '0s']);
  });
});
