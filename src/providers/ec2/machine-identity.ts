// What lets any coordinator of a deployment reach an instance, with nothing stored per instance but tags.
//
// The client key an instance authorises is derived, not drawn: its ed25519 seed is
//   HMAC-SHA256(fleetSecret, "fleetrunner ssh client v1:" + nonce)
// with a random nonce per launch. The nonce and the host PUBLIC key the user data installs go on the instance
// as tags, with a seal binding the two to this deployment:
//   fleetrunner:key-nonce  22 base64url characters (16 random bytes)
//   fleetrunner:host-key   "ssh-ed25519 AAAA…" (about 80 characters)
//   fleetrunner:key-seal   HMAC-SHA256(fleetSecret, "fleetrunner key tags v1:" + nonce + ":" + host key), 128 bits
// None of them is a secret: the nonce is useless without the fleet secret, the host key is public and the
// seal is a MAC. A successor that holds the fleet secret reads them back, checks the seal (so a tag written
// by anyone without the secret, or copied onto another instance with another host key, is refused before a
// connection is tried), re-derives the client key and pins the host key. Nothing has to be stored per
// instance, so there is nothing to lose, leak or clean up.
//
// The fleet secret comes from the composition root (cli/): derived from the configured runner token, the
// secret every task of the deployment already holds (see docs/architecture.md §4.5).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { ed25519FromSeed } from '../ssh-keys.js';

export const TAG_KEY_NONCE = 'fleetrunner:key-nonce';
export const TAG_HOST_KEY = 'fleetrunner:host-key';
export const TAG_KEY_SEAL = 'fleetrunner:key-seal';

const CLIENT_SEED_LABEL = 'fleetrunner ssh client v1:';
const SEAL_LABEL = 'fleetrunner key tags v1:';
const NONCE = /^[A-Za-z0-9_-]{22}$/;
const SEAL = /^[A-Za-z0-9_-]{22}$/;
/** "ssh-ed25519 " + base64 of the 51-byte wire key: the only host key form the user data installs. */
const HOST_KEY = /^ssh-ed25519 [A-Za-z0-9+/]{68}$/;
/** Shortest fleet secret accepted: an HMAC-SHA256 output, or 32 random bytes. */
export const MIN_FLEET_SECRET_BYTES = 32;

/** Why an instance's tags do not give this deployment a way in; the reason is a name for logs and decisions. */
export type IdentityRefusal =
  | { reason: 'no_key_tags'; message: string }
  | { reason: 'incomplete_key_tags'; message: string }
  | { reason: 'malformed_key_tags'; message: string }
  | { reason: 'seal_mismatch'; message: string };

export interface RecoveredIdentity {
  /** OpenSSH private key, derived from the nonce. */
  clientPrivateKey: string;
  /** The pinned host key, "ssh-ed25519 AAAA…". */
  hostPublicKey: string;
}

export interface IssuedIdentity extends RecoveredIdentity {
  /** Goes to the user data's authorized_keys. */
  clientPublicKey: string;
  /** Go on the instance at launch. */
  tags: Record<string, string>;
}

export class MachineIdentity {
  private readonly secret: Buffer;

  /** `fleetSecret`: the deployment's key material, at least 32 bytes. Never logged. */
  constructor(
    fleetSecret: Uint8Array,
    private readonly comment: string,
    private readonly newNonce: () => string = () => randomBytes(16).toString('base64url'),
  ) {
    if (fleetSecret.length < MIN_FLEET_SECRET_BYTES) throw new Error(`the fleet secret must be at least ${MIN_FLEET_SECRET_BYTES} bytes`);
    this.secret = Buffer.from(fleetSecret);
  }

  /** A new instance's identity: a fresh nonce, the client key it gives and the tags that let a successor back in. */
  issue(hostPublicKey: string): IssuedIdentity {
    if (!HOST_KEY.test(hostPublicKey)) throw new Error('the host key must be a one-line ssh-ed25519 public key');
    const nonce = this.newNonce();
    if (!NONCE.test(nonce)) throw new Error('a key nonce is 22 base64url characters');
    const client = this.clientKey(nonce);
    return {
      clientPrivateKey: client.private,
      clientPublicKey: client.public,
      hostPublicKey,
      tags: { [TAG_KEY_NONCE]: nonce, [TAG_HOST_KEY]: hostPublicKey, [TAG_KEY_SEAL]: this.seal(nonce, hostPublicKey) },
    };
  }

  /** The identity an instance's tags describe, or why they cannot be trusted. */
  recover(tags: Readonly<Record<string, string>>): RecoveredIdentity | IdentityRefusal {
    const nonce = tags[TAG_KEY_NONCE];
    const host = tags[TAG_HOST_KEY];
    const seal = tags[TAG_KEY_SEAL];
    if (nonce === undefined && host === undefined && seal === undefined) {
      return { reason: 'no_key_tags', message: `it has none of the tags ${TAG_KEY_NONCE}, ${TAG_HOST_KEY}, ${TAG_KEY_SEAL} (launched by a fleetrunner without durable machine keys, or not by fleetrunner)` };
    }
    const missing = [[TAG_KEY_NONCE, nonce], [TAG_HOST_KEY, host], [TAG_KEY_SEAL, seal]].filter(([, v]) => v === undefined).map(([k]) => k);
    if (missing.length) return { reason: 'incomplete_key_tags', message: `its tag${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing` };
    const bad = [
      !NONCE.test(nonce!) && TAG_KEY_NONCE,
      !HOST_KEY.test(host!) && TAG_HOST_KEY,
      !SEAL.test(seal!) && TAG_KEY_SEAL,
    ].filter((k): k is string => k !== false);
    if (bad.length) return { reason: 'malformed_key_tags', message: `its tag${bad.length > 1 ? 's' : ''} ${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not well-formed` };
    const expected = Buffer.from(this.seal(nonce!, host!));
    const given = Buffer.from(seal!);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      return {
        reason: 'seal_mismatch',
        message: `its key tags were not written by this deployment (the ${TAG_KEY_SEAL} tag does not match: another runner token, or the tags were changed after launch)`,
      };
    }
    return { clientPrivateKey: this.clientKey(nonce!).private, hostPublicKey: host! };
  }

  private clientKey(nonce: string) {
    const seed = createHmac('sha256', this.secret).update(CLIENT_SEED_LABEL + nonce).digest();
    return ed25519FromSeed(seed, this.comment);
  }

  private seal(nonce: string, hostPublicKey: string): string {
    return createHmac('sha256', this.secret).update(`${SEAL_LABEL}${nonce}:${hostPublicKey}`).digest().subarray(0, 16).toString('base64url');
  }
}

export function isRefusal(r: RecoveredIdentity | IdentityRefusal): r is IdentityRefusal {
  return 'reason' in r;
}
