// Token-shaped values for tests, made at run time: no token-like literal is ever committed, and a test that
// leaks one into a trace, a log or a command line cannot pass by accident on a fixed string.

import { randomBytes } from 'node:crypto';

/** `prefix` followed by 20 random characters of GitLab's token alphabet (e.g. testToken('glcbt-64_')). */
export function testToken(prefix: string): string {
  return prefix + randomBytes(15).toString('base64url');
}
