// Ed25519 key pairs in OpenSSH format, generated here in the coordinator (no ssh-keygen on the host).

import { createPrivateKey, createPublicKey } from 'node:crypto';

import ssh2 from 'ssh2';

// ssh2 is CommonJS: Node's ESM loader exposes `utils` only on the default export.
const { utils } = ssh2;

export interface KeyPair {
  /** OpenSSH private key file contents. */
  private: string;
  /** "ssh-ed25519 AAAA…" without a comment. */
  public: string;
}

/** Wire form of an ed25519 public key: string "ssh-ed25519" (4+11) + string key (4+32). */
const ED25519_BLOB_BYTES = 51;

/**
 * ssh2's generator drops a leading zero byte of the 32-byte key (about one key in 256), which OpenSSH then
 * refuses to load ("error in libcrypto"). Such keys are drawn again.
 */
export function generateEd25519(comment: string): KeyPair {
  for (let attempt = 0; attempt < 16; attempt++) {
    const k = utils.generateKeyPairSync('ed25519', { comment });
    const [type, blob] = k.public.trim().split(/\s+/);
    if (type === 'ssh-ed25519' && blob && Buffer.from(blob, 'base64').length === ED25519_BLOB_BYTES) {
      return { private: k.private, public: `${type} ${blob}` };
    }
  }
  throw new Error('could not generate a well-formed ed25519 key');
}

/** DER prefix of a PKCS#8 ed25519 private key; the 32-byte seed follows (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The ed25519 key pair whose private seed is `seed` (32 bytes), in the same forms as generateEd25519. Used for
 * keys derived from a secret rather than drawn at random. ssh2 can read OpenSSH private keys but writes them
 * only for keys it generates itself, so the `openssh-key-v1` container is written here (unencrypted, as
 * ssh-keygen -N '' writes it).
 */
export function ed25519FromSeed(seed: Uint8Array, comment: string): KeyPair {
  if (seed.length !== 32) throw new Error(`an ed25519 seed is 32 bytes, not ${seed.length}`);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  // The raw public key is the last 32 bytes of its SubjectPublicKeyInfo.
  const pub = createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  // The two check integers only have to match each other; taken from the key so the output is deterministic.
  const check = pub.subarray(0, 4);
  const section = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3, … to the cipher block size, 8 for "none".
  const padding = Buffer.from(Array.from({ length: (8 - (section.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(blob),
    sshString(Buffer.concat([section, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    private: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    public: `ssh-ed25519 ${blob.toString('base64')}`,
  };
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** SSH wire "string": a uint32 length, then the bytes. */
function sshString(v: string | Uint8Array): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
  return Buffer.concat([uint32(b.length), b]);
}
