import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isValidSystemId, loadSystemId, randomSystemId, systemIdFromMachineId, type StateFiles } from '../../../src/gitlab/system-id.js';

function memFiles(initial: Record<string, string> = {}, failWrites = false): StateFiles & { files: Record<string, string> } {
  const files = { ...initial };
  return {
    files,
    read: async (p) => files[p],
    write: async (p, c) => {
      if (failWrites) throw new Error('read-only file system');
      files[p] = c;
    },
  };
}

describe('system_id', () => {
  it('is s_ + first 12 hex of HMAC-SHA256(machine-id, "gitlab-runner")', () => {
    const mid = '4c4c4544004b3510804ab4c04f4c4d32';
    const expected = 's_' + createHmac('sha256', mid).update('gitlab-runner').digest('hex').slice(0, 12);
    expect(systemIdFromMachineId(`${mid}\n`)).toBe(expected);
    expect(expected).toMatch(/^s_[0-9a-f]{12}$/);
  });

  it('is r_ + 12 alphanumerics without a machine-id', () => {
    expect(randomSystemId()).toMatch(/^r_[0-9a-zA-Z]{12}$/);
    expect(randomSystemId(() => 0)).toBe('r_aaaaaaaaaaaa');
  });

  it('reuses a valid id from the state file', async () => {
    const files = memFiles({ '/s/.runner_system_id': 'r_AbCdEf123456\n' });
    expect(await loadSystemId({ machineId: 'abc', statePath: '/s/.runner_system_id', files })).toEqual({ systemId: 'r_AbCdEf123456' });
  });

  it('replaces an invalid stored id and persists the new one', async () => {
    const files = memFiles({ '/s/id': 'garbage' });
    const { systemId } = await loadSystemId({ machineId: 'abc', statePath: '/s/id', files });
    expect(systemId).toBe(systemIdFromMachineId('abc'));
    expect(files.files['/s/id']).toBe(systemId);
  });

  it('falls back to a random id and reports a failed write instead of throwing', async () => {
    const r = await loadSystemId({ machineId: '  ', statePath: '/ro/id', files: memFiles({}, true) });
    expect(isValidSystemId(r.systemId) && r.systemId.startsWith('r_')).toBe(true);
    expect(r.persistError?.message).toBe('read-only file system');
  });

  it('works without a state file', async () => {
    expect((await loadSystemId({ machineId: 'm' })).systemId).toBe(systemIdFromMachineId('m'));
  });
});
