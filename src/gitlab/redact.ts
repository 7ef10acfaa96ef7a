// Builds log and error text that can never carry a token. GitLab error bodies may echo what we sent, and
// our own messages may be built from values that hold tokens, so every message passes through here.

/** GitLab's token prefixes (the runner's default mask list, docs/gitlab-protocol.md §6.4) and the session cookie. An
 *  explicit list: a generic gl…- pattern would also eat words such as "global-" or "glibc-". */
const PREFIXES = ['glpat-', 'gloas-', 'gldt-', 'glrt-', 'glrtr-', 'glcbt-', 'glptt-', 'glft-', 'glimt-', 'glagent-', 'glsoat-', 'glffct-', 'gltok-', '_gitlab_session='];
const GITLAB_TOKEN = new RegExp(`(?<![A-Za-z0-9_])(?:${PREFIXES.join('|')})[A-Za-z0-9._=-]+`, 'g');

export const MASK = '[MASKED]';

/** Replaces known secrets (longest first, so a secret containing another is masked whole) and anything
 *  shaped like a GitLab token. Empty and very short values are ignored: masking "a" would wreck the text
 *  and such values are not real tokens. */
export function redact(text: string, secrets: Iterable<string | undefined> = []): string {
  const known = [...new Set([...secrets].filter((s): s is string => typeof s === 'string' && s.length >= 6))].sort(
    (a, b) => b.length - a.length,
  );
  let out = text;
  for (const s of known) out = out.split(s).join(MASK);
  return out.replace(GITLAB_TOKEN, MASK);
}
