import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';

import { ed25519FromSeed, generateEd25519 } from '../../../src/providers/ssh-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'fr-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('generated ed25519 keys', () => {
  it('always carry a full 32-byte public key (ssh2 drops a leading zero byte about once in 256 keys)', () => {
    for (let i = 0; i < 2000; i++) {
      const k = generateEd25519('t');
      expect(Buffer.from(k.public.split(' ')[1]!, 'base64')).toHaveLength(51);
    }
  });

  it('load in OpenSSH, whose public half matches', () => {
    const k = generateEd25519('fleetrunner-test');
    const file = join(dir, 'key');
    writeFileSync(file, k.private, { mode: 0o600 });
    const r = spawnSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split(' ').slice(0, 2).join(' ')).toBe(k.public);
  });
});

const ed25519Public = (seed: Buffer) => Buffer.from(ed25519FromSeed(seed, '').public.split(' ')[1]!, 'base64').subarray(-32);

describe('ed25519 keys from a seed', () => {
  it('are written as OpenSSH private keys that ssh-keygen and ssh2 load, with the matching public half', () => {
    // Also a seed whose public key starts with a zero byte, the case ssh2's own writer gets wrong.
    let zeroLed = Buffer.alloc(32);
    for (let i = 0; ed25519Public(zeroLed)[0] !== 0; i++) zeroLed = createHash('sha256').update(String(i)).digest();
    for (const seed of [randomBytes(32), Buffer.alloc(32), zeroLed]) {
      const k = ed25519FromSeed(seed, 'fleetrunner-derived');
      const file = join(dir, 'derived');
      writeFileSync(file, k.private, { mode: 0o600 });
      const r = spawnSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim().split(' ').slice(0, 2).join(' ')).toBe(k.public);
      const parsed = ssh2.utils.parseKey(k.private);
      if (parsed instanceof Error) throw parsed;
      expect(parsed.type).toBe('ssh-ed25519');
      expect(parsed.getPublicSSH().equals(Buffer.from(k.public.split(' ')[1]!, 'base64'))).toBe(true);
    }
  });

  it('are the same for the same seed and different for another', () => {
    const seed = randomBytes(32);
    expect(ed25519FromSeed(seed, 'a')).toEqual(ed25519FromSeed(Buffer.from(seed), 'a'));
    expect(ed25519FromSeed(randomBytes(32), 'a').public).not.toBe(ed25519FromSeed(seed, 'a').public);
  });

  it('refuse a seed that is not 32 bytes', () => {
    expect(() => ed25519FromSeed(randomBytes(31), 'a')).toThrow('32 bytes, not 31');
  });
});
