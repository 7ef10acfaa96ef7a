// The derivation behind durable machine keys (machine-identity.ts): a successor must derive exactly the key
// its predecessor derived, also across fleetrunner versions, so the derivation is pinned by a known answer.

import { createHmac, randomBytes } from 'node:crypto';

import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';

import { MachineIdentity, isRefusal, type RecoveredIdentity } from '../../../src/providers/ec2/machine-identity.js';
import { ed25519FromSeed, generateEd25519 } from '../../../src/providers/ssh-keys.js';

const publicOf = (privateKey: string) => {
  const k = ssh2.utils.parseKey(privateKey);
  if (k instanceof Error) throw k;
  return `${k.type} ${k.getPublicSSH().toString('base64')}`;
};

describe('machine identity', () => {
  it('derives the client key from HMAC-SHA256(fleet secret, "fleetrunner ssh client v1:" + nonce), as documented', () => {
    const secret = randomBytes(32);
    const nonce = randomBytes(16).toString('base64url');
    const issued = new MachineIdentity(secret, 'c', () => nonce).issue(generateEd25519('h').public);
    const seed = createHmac('sha256', secret).update(`fleetrunner ssh client v1:${nonce}`).digest();
    expect(issued.clientPublicKey).toBe(ed25519FromSeed(seed, 'c').public);
    expect(publicOf(issued.clientPrivateKey)).toBe(issued.clientPublicKey);
  });

  // Known answers computed independently (Python's hmac and cryptography), not by this code.
  it('is stable: a dummy secret and nonce give the same key in every version (changing it strands running instances)', () => {
    const host = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpjwt6ANqvm9ubZ2j1nbv8/zyJqzL6c9nOT1HpeXSdC';
    const issued = new MachineIdentity(Buffer.alloc(32, 7), 'c', () => 'AAAAAAAAAAAAAAAAAAAAAA').issue(host);
    expect(issued.clientPublicKey).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICNNavo3exhi6WFT+7MuOHhnjmxXnRdnMcJwsG/uBeTM');
    expect(issued.tags['fleetrunner:key-seal']).toBe('aU5weCt-5CKvoz5bwBo0hA');
  });

  it('recovers what it issued from the tags alone, with another instance of the class (a new process)', () => {
    const secret = randomBytes(32);
    const host = generateEd25519('h').public;
    const issued = new MachineIdentity(secret, 'c').issue(host);
    const recovered = new MachineIdentity(Buffer.from(secret), 'c').recover(issued.tags);
    expect(isRefusal(recovered)).toBe(false);
    expect((recovered as RecoveredIdentity).hostPublicKey).toBe(host);
    expect(publicOf((recovered as RecoveredIdentity).clientPrivateKey)).toBe(issued.clientPublicKey);
    for (const v of Object.values(issued.tags)) expect(v.length).toBeLessThan(256);
    expect(JSON.stringify(issued.tags)).not.toContain('PRIVATE');
  });

  it('gives every launch a fresh nonce and so its own key', () => {
    const id = new MachineIdentity(randomBytes(32), 'c');
    const host = generateEd25519('h').public;
    const keys = new Set(Array.from({ length: 20 }, () => id.issue(host).clientPublicKey));
    expect(keys.size).toBe(20);
  });

  it('refuses with a named reason: another secret, a changed tag, missing or malformed tags', () => {
    const secret = randomBytes(32);
    const tags = new MachineIdentity(secret, 'c').issue(generateEd25519('h').public).tags;
    const mine = new MachineIdentity(secret, 'c');
    const reason = (t: Record<string, string>, who = mine) => {
      const r = who.recover(t);
      return isRefusal(r) ? r.reason : 'ok';
    };
    expect(reason(tags)).toBe('ok');
    expect(reason(tags, new MachineIdentity(randomBytes(32), 'c'))).toBe('seal_mismatch');
    expect(reason({ ...tags, 'fleetrunner:host-key': generateEd25519('x').public })).toBe('seal_mismatch');
    expect(reason({ ...tags, 'fleetrunner:key-nonce': randomBytes(16).toString('base64url') })).toBe('seal_mismatch');
    expect(reason({ 'fleetrunner:key-nonce': tags['fleetrunner:key-nonce']! })).toBe('incomplete_key_tags');
    expect(reason({ ...tags, 'fleetrunner:key-seal': 'short' })).toBe('malformed_key_tags');
    expect(reason({ Name: 'x' })).toBe('no_key_tags');
  });

  it('wants a secret of at least 32 bytes', () => {
    expect(() => new MachineIdentity(randomBytes(16), 'c')).toThrow(/at least 32 bytes/);
  });
});
