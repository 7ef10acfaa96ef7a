// The behaviour every CapacityProvider promises, as one suite: run it for each provider (local here, a
// fake-EC2-backed one later), e.g. `describeProviderContract('local', async () => ({ provider }))`.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { CapacityProvider, Machine, MachineState, OwnershipTags } from '../../../src/core/index.js';

export interface ProviderUnderTest {
  provider: CapacityProvider;
  /** Called once after the suite, after every machine it created was terminated. */
  dispose?: () => Promise<void>;
}

const STATES: readonly MachineState[] = ['pending', 'running', 'stopping', 'terminated', 'unknown'];
const GONE: readonly MachineState[] = ['stopping', 'terminated'];

export function describeProviderContract(name: string, make: () => Promise<ProviderUnderTest>): void {
  describe(`${name}: CapacityProvider contract`, () => {
    let put: ProviderUnderTest;
    const created: string[] = [];
    const suffix = Math.random().toString(36).slice(2, 8);
    const tagsA: OwnershipTags = { fleet: `contract-a-${suffix}`, executor: 'exec-a', coordinator: 'coord-1' };
    const tagsB: OwnershipTags = { fleet: `contract-b-${suffix}`, executor: 'exec-b', coordinator: 'coord-2' };
    const tagsA2: OwnershipTags = { ...tagsA, executor: 'exec-a2', coordinator: 'coord-2' };

    const create = async (count: number, tags: OwnershipTags): Promise<Machine[]> => {
      const r = await put.provider.create(count, tags);
      created.push(...r.machines.map((m) => m.id));
      expect(r.errors).toEqual([]);
      return r.machines;
    };
    const live = (ms: Machine[]) => ms.filter((m) => !GONE.includes(m.state));

    beforeAll(async () => {
      put = await make();
    });
    afterAll(async () => {
      if (!put) return;
      await put.provider.terminate(created);
      await put.dispose?.();
    });

    it('create returns one tagged machine per requested machine, with distinct ids', async () => {
      const ms = await create(2, tagsA);
      expect(ms).toHaveLength(2);
      expect(new Set(ms.map((m) => m.id)).size).toBe(2);
      for (const m of ms) {
        expect(m.id).toMatch(/\S/);
        expect(m.tags).toEqual(tagsA);
        expect(m.executor).toBe(tagsA.executor);
        expect(STATES).toContain(m.state);
      }
    });

    it('create(0) creates nothing', async () => {
      expect(await put.provider.create(0, tagsA)).toEqual({ machines: [], errors: [] });
    });

    it('list sees only machines carrying the given tags', async () => {
      const [a] = await create(1, tagsA);
      const [a2] = await create(1, tagsA2);
      const [b] = await create(1, tagsB);

      const fleetA = (await put.provider.list({ fleet: tagsA.fleet })).map((m) => m.id);
      expect(fleetA).toEqual(expect.arrayContaining([a!.id, a2!.id]));
      expect(fleetA).not.toContain(b!.id);

      const execA = (await put.provider.list({ fleet: tagsA.fleet, executor: 'exec-a' })).map((m) => m.id);
      expect(execA).toContain(a!.id);
      expect(execA).not.toContain(a2!.id);

      const coord2 = (await put.provider.list({ fleet: tagsA.fleet, coordinator: 'coord-2' })).map((m) => m.id);
      expect(coord2).toEqual([a2!.id]);

      const fleetB = await put.provider.list({ fleet: tagsB.fleet });
      expect(fleetB.map((m) => m.id)).toEqual([b!.id]);
      expect(fleetB[0]!.tags).toEqual(tagsB);

      expect(await put.provider.list({ fleet: `no-such-fleet-${suffix}` })).toEqual([]);
    });

    it('waitReady resolves with the connection info of a created machine', async () => {
      const [m] = await create(1, tagsB);
      const info = await put.provider.waitReady(m!);
      expect(info.host).toMatch(/\S/);
      expect(info.port).toBeGreaterThan(0);
      expect(info.hostPublicKey).toMatch(/^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+$/);
      expect(info.privateKey).toContain('PRIVATE KEY');
      expect(info.buildsDir).toMatch(/^\//);
      expect(info.cacheDir).toMatch(/^\//);
    });

    it('terminate is idempotent and unknown ids are success', async () => {
      const [m] = await create(1, tagsB);
      expect(await put.provider.terminate([m!.id])).toEqual({ errors: [] });
      expect(await put.provider.terminate([m!.id])).toEqual({ errors: [] });
      expect(await put.provider.terminate([`unknown-${suffix}`])).toEqual({ errors: [] });
      expect(await put.provider.terminate([])).toEqual({ errors: [] });
      const after = await put.provider.list({ fleet: tagsB.fleet });
      expect(live(after).map((x) => x.id)).not.toContain(m!.id);
    });

    it('labels, where the provider keeps them, are listed as last given, and a machine never labelled has none', async () => {
      const label = put.provider.label?.bind(put.provider);
      if (!label) return; // optional: a provider without it keeps no labels
      const [m, other] = await create(2, tagsA2);
      await label(m!.id, { state: 'busy', job: '1234' });
      const byId = async () => new Map((await put.provider.list({ fleet: tagsA2.fleet })).map((x) => [x.id, x.labels]));
      expect((await byId()).get(m!.id)).toEqual({ state: 'busy', job: '1234' });
      expect((await byId()).get(other!.id)).toBeUndefined();
      await label(m!.id, { state: 'idle' });
      expect((await byId()).get(m!.id)).toEqual({ state: 'idle' });
    });

    it('every listed machine has a state from the closed set', async () => {
      await create(1, tagsA);
      const all = [...(await put.provider.list({ fleet: tagsA.fleet })), ...(await put.provider.list({ fleet: tagsB.fleet }))];
      expect(all.length).toBeGreaterThan(0);
      for (const m of all) expect(STATES).toContain(m.state);
    });
  });
}
