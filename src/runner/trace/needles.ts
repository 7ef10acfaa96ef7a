// What the masker looks for (masker.ts): the token prefixes and URL parameters whose values it masks,
// compiled once per list and shared by every job's masker, and the KMP tables that tell how much of a
// chunk's end could still begin a needle.

/** gitlab-runner's default token prefixes (FF_MASK_ALL_DEFAULT_TOKENS). */
export const DEFAULT_TOKEN_PREFIXES = [
  'glpat-', 'gloas-', 'gldt-', 'glrt-', 'glcbt-', 'glrtr-', 'glptt-', 'glft-', 'glimt-', 'glagent-', 'glsoat-',
  'glffct-', '_gitlab_session=', 'gltok-',
];
/** URL query parameters whose values are masked. */
export const URL_PARAMS = ['private_token', 'authenticity_token', 'rss_token', 'X-Amz-Signature', 'X-Amz-Credential', 'X-Amz-Security-Token'];

// Token body: [A-Za-z0-9._=-]; URL values additionally %, +, / and ~.
export const TOKEN_CHARS = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-');
export const URL_CHARS = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-%+/~');

function charTable(chars: string): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
}

export interface PrefixRule {
  prefix: Buffer;
  chars: Uint8Array;
}

/** The token prefixes and URL parameters of a masker, compiled once and shared by every job that has the
 *  same list (all of them, unless a job adds prefixes of its own): one alternation, one KMP table each. */
export interface PrefixSet {
  /** By the prefix's latin1 view (what the pattern matches in a chunk's view). */
  rules: Map<string, PrefixRule>;
  pattern: RegExp;
  tails: TailMatcher[];
}

/** A needle with its KMP failure table, to find the longest tail of a chunk that is a proper prefix of it. */
export interface TailMatcher {
  bytes: Uint8Array;
  /** fail[q]: length of the longest proper border of bytes[0, q). */
  fail: Int32Array;
}

const prefixSets = new Map<string, PrefixSet>();

export function prefixSet(tokenPrefixes: readonly string[]): PrefixSet {
  const prefixes = [...new Set(tokenPrefixes.map((p) => p.trim()).filter(Boolean))];
  const key = prefixes.join('\n');
  let set = prefixSets.get(key);
  if (set) return set;
  const rules = new Map<string, PrefixRule>();
  const add = (p: string, chars: Uint8Array) => {
    const prefix = Buffer.from(p);
    const key = prefix.toString('latin1');
    if (!rules.has(key)) rules.set(key, { prefix, chars });
  };
  for (const p of prefixes) add(p, TOKEN_CHARS);
  for (const p of URL_PARAMS) add(`${p}=`, URL_CHARS);
  set = { rules, pattern: alternation([...rules.keys()]), tails: tailMatchers([...rules.values()].map((r) => r.prefix)) };
  // Bounded: only jobs whose GitLab adds prefixes of its own (features.token_mask_prefixes) make new sets.
  if (prefixSets.size >= 64) prefixSets.clear();
  prefixSets.set(key, set);
  return set;
}

/** One global pattern matching any of `needles` (latin1 views) literally. */
export function alternation(needles: readonly string[]): RegExp {
  return new RegExp(needles.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
}

/** Needles of 2+ bytes with their failure tables, longest first (a 1-byte needle has no proper prefix to
 *  wait for). */
export function tailMatchers(needles: Buffer[]): TailMatcher[] {
  return needles
    .filter((b) => b.length > 1)
    .sort((a, b) => b.length - a.length)
    // Copies of their own: a small Buffer is a slice of Node's shared 8 KiB pool, and one a job keeps for
    // its whole run would keep the whole slab.
    .map((b) => ({ bytes: new Uint8Array(b), fail: failureTable(b) }));
}

/** tailStart for one list of needles (longest first), given the start found so far. */
export function tailStartOf(buf: Buffer, tails: readonly TailMatcher[], startSoFar: number): number {
  const n = buf.length;
  let start = startSoFar;
  for (const t of tails) {
    const pat = t.bytes;
    const from = n - (pat.length - 1);
    // Needles are sorted longest first: once the window can no longer reach before `start`, none can.
    if (from >= start || start === 0) break;
    const fail = t.fail;
    let q = 0; // the longest suffix of buf[from', i) that is a prefix of pat (never all of it: too short)
    for (let i = from > 0 ? from : 0; i < n; i++) {
      const c = buf[i]!;
      while (q > 0 && pat[q] !== c) q = fail[q]!;
      if (pat[q] === c) q++;
    }
    if (n - q < start) start = n - q;
  }
  return start;
}

function failureTable(pat: Uint8Array): Int32Array {
  const fail = new Int32Array(pat.length + 1);
  for (let i = 1, k = 0; i < pat.length; i++) {
    while (k > 0 && pat[i] !== pat[k]) k = fail[k]!;
    if (pat[i] === pat[k]) k++;
    fail[i + 1] = k;
  }
  return fail;
}
