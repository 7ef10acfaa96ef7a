// GitLab's long-poll cursor (docs/gitlab-protocol.md §2.2): the last non-empty `X-GitLab-Last-Update` seen on any JSON
// answer for a runner's credentials goes back as `last_update` on the next jobs/request, so Workhorse
// can hold the request until the queue changes.

import { createHash } from 'node:crypto';

export const LAST_UPDATE_HEADER = 'X-GitLab-Last-Update';

export class LastUpdateStore {
  private readonly values = new Map<string, string>();

  /** Keys are hashes of (GitLab URL, runner token): the store never holds a token itself. */
  static keyOf(baseUrl: string, token: string): string {
    return createHash('sha256').update(baseUrl).update('\0').update(token).digest('hex');
  }

  get(key: string): string | undefined {
    return this.values.get(key);
  }

  /** Remembers `value` when it is non-empty; an empty or missing header keeps the previous value. */
  observe(key: string, value: string | null | undefined): void {
    const v = value?.trim();
    if (v) this.values.set(key, v);
  }

  /** Forgets a credential (after token rotation the old key is dead). */
  forget(key: string): void {
    this.values.delete(key);
  }
}
