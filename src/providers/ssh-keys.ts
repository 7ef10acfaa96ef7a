// Ed25519 key pairs in OpenSSH format, generated here in the coordinator (no ssh-keygen on the host).

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
