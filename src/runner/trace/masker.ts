// Streaming secret masking for the job trace (docs/gitlab-protocol.md §6.4), correct across write boundaries and
// bounded in memory: it holds back only the bytes that could still be the start of a secret.
//
// - exact values (masked variables, the job token) are replaced whole by [MASKED];
// - token prefixes (glpat-, glcbt-, …) and URL parameters (private_token=, X-Amz-Signature=, …) keep the
//   prefix and replace the value: "glpat-[MASKED]", as gitlab-runner does.

const MASK = Buffer.from('[MASKED]');

/** gitlab-runner's default token prefixes (FF_MASK_ALL_DEFAULT_TOKENS). */
export const DEFAULT_TOKEN_PREFIXES = [
  'glpat-', 'gloas-', 'gldt-', 'glrt-', 'glcbt-', 'glrtr-', 'glptt-', 'glft-', 'glimt-', 'glagent-', 'glsoat-',
  'glffct-', '_gitlab_session=', 'gltok-',
];
/** URL query parameters whose values are masked. */
export const URL_PARAMS = ['private_token', 'authenticity_token', 'rss_token', 'X-Amz-Signature', 'X-Amz-Credential', 'X-Amz-Security-Token'];

// Token body: [A-Za-z0-9._=-]; URL values additionally %, +, / and ~.
const TOKEN_CHARS = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-');
const URL_CHARS = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=-%+/~');
/** An unterminated token longer than this is emitted masked instead of being held back further. */
const MAX_OPEN_TOKEN = 16 * 1024;

function charTable(chars: string): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
}

interface PrefixRule {
  prefix: Buffer;
  chars: Uint8Array;
}

interface Needle {
  bytes: Buffer;
  /** Set for prefixes (keep the prefix, mask the value); unset for exact secrets. */
  rule?: PrefixRule;
}

/** A needle with its KMP failure table, to find the longest tail of a chunk that is a proper prefix of it. */
interface TailMatcher {
  bytes: Buffer;
  /** fail[q]: length of the longest proper border of bytes[0, q). */
  fail: Int32Array;
}

interface Range {
  /** Where the match begins (the prefix, for prefixed tokens): bytes from here on are held together. */
  from: number;
  /** Where the replaced part begins. */
  start: number;
  end: number;
}

export interface MaskerOptions {
  /** Exact secret values (masked variables, tokens). Trimmed; empty ones ignored. */
  secrets: readonly string[];
  /** Token prefixes in addition to (or instead of) the defaults. */
  tokenPrefixes?: readonly string[];
}

export class StreamMasker {
  private secrets: Buffer[];
  private readonly rules: PrefixRule[];
  private readonly needles = new Map<string, Needle>();
  /** Every needle of 2+ bytes, longest first (a 1-byte needle has no proper prefix to wait for). */
  private tails: TailMatcher[] = [];
  private pattern: RegExp = /(?!)/g;
  private pending: Buffer = Buffer.alloc(0);
  /** Inside a token body whose prefix and [MASKED] were already emitted. */
  private openRule: PrefixRule | undefined;

  constructor(
    options: MaskerOptions,
    private readonly out: (bytes: Buffer) => void,
  ) {
    const unique = new Set(options.secrets.map((s) => s.trim()).filter((s) => s.length > 0));
    this.secrets = [...unique].map((s) => Buffer.from(s)).sort((a, b) => b.length - a.length);
    const prefixes = new Set([...(options.tokenPrefixes ?? DEFAULT_TOKEN_PREFIXES)].map((p) => p.trim()).filter(Boolean));
    this.rules = [
      ...[...prefixes].map((p) => ({ prefix: Buffer.from(p), chars: TOKEN_CHARS })),
      ...URL_PARAMS.map((p) => ({ prefix: Buffer.from(`${p}=`), chars: URL_CHARS })),
    ];
    this.compile();
  }

  /** Masks more exact values from now on (held-back bytes included). */
  addSecrets(values: readonly string[]): void {
    const known = new Set(this.secrets.map((b) => b.toString()));
    const added = values.map((v) => v.trim()).filter((v) => v.length > 0 && !known.has(v));
    if (!added.length) return;
    this.secrets = [...this.secrets, ...added.map((v) => Buffer.from(v))].sort((a, b) => b.length - a.length);
    this.compile();
  }

  private compile(): void {
    this.needles.clear();
    // Exact secrets first and longest first, so the alternation prefers the longest at one offset.
    for (const bytes of this.secrets) this.needles.set(bytes.toString('latin1'), { bytes });
    for (const rule of this.rules) if (!this.needles.has(rule.prefix.toString('latin1'))) this.needles.set(rule.prefix.toString('latin1'), { bytes: rule.prefix, rule });
    const alternatives = [...this.needles.keys()].map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.pattern = new RegExp(alternatives.length ? alternatives.join('|') : '(?!)', 'g');
    this.tails = [...this.needles.values()]
      .filter((n) => n.bytes.length > 1)
      .sort((a, b) => b.bytes.length - a.bytes.length)
      .map((n) => ({ bytes: n.bytes, fail: failureTable(n.bytes) }));
  }

  /**
   * Where the bytes that could still begin a match start: the earliest i such that buf[i, end) is a proper
   * prefix of some needle (exact secret or token/URL prefix), or buf.length if there is none. Whatever
   * starts before it is decided by this chunk alone: every needle that can match there lies wholly inside
   * it, so more output cannot change which needle matches at such an offset. (A prefixed token whose body
   * runs up to the end is held by process() itself.) One KMP pass per needle over at most its length − 1
   * last bytes: linear, whatever the output and the secrets look like.
   */
  private tailStart(buf: Buffer): number {
    const n = buf.length;
    let start = n;
    for (const t of this.tails) {
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

  /** Bytes held back, waiting to know whether they start a secret. */
  get heldBytes(): number {
    return this.pending.length;
  }

  /** Inside a long token whose prefix and [MASKED] were already emitted: a fresh masker started at this
   *  point would not know to mask the rest, so no trace checkpoint may be taken here. */
  get insideToken(): boolean {
    return this.openRule !== undefined;
  }

  write(chunk: Uint8Array): void {
    let data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.openRule) {
      const skip = spanOf(data, 0, this.openRule.chars);
      if (skip === data.length) return;
      this.openRule = undefined;
      data = data.subarray(skip);
    }
    const buf = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    this.process(buf, false);
  }

  /** End of stream: emit everything held back, masked. */
  flush(): void {
    const buf = this.pending;
    this.pending = Buffer.alloc(0);
    if (buf.length) this.process(buf, true);
  }

  private process(buf: Buffer, final: boolean): void {
    const ranges: Range[] = [];
    let limit = final ? buf.length : this.tailStart(buf);
    let openAt = -1;
    /** Prefixes with an empty body, [from, end): they still hide prefixes starting inside them. */
    let bare: Range[] | undefined;
    let openRule: PrefixRule | undefined;
    // One compiled alternation of every needle over a latin1 view (one char per byte, so indexes are byte
    // offsets): V8's regex engine scans once, where an indexOf per needle would scan the buffer 20-40 times.
    const text = buf.toString('latin1');
    const re = this.pattern;
    re.lastIndex = 0;
    let skipUntil = 0; // inside a prefixed token body: its prefixes are part of it
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const i = m.index;
      re.lastIndex = i + 1; // overlapping matches count too (they merge into one range)
      const needle = this.needles.get(m[0])!;
      if (needle.rule === undefined) {
        ranges.push({ from: i, start: i, end: i + needle.bytes.length });
        continue;
      }
      if (i < skipUntil) continue;
      const rule = needle.rule;
      const bodyStart = i + needle.bytes.length;
      const bodyEnd = spanOf(buf, bodyStart, rule.chars);
      if (bodyEnd === buf.length && !final) {
        // The token may continue in the next write: hold it back (or, if huge, emit masked and skip on).
        if (openAt === -1) {
          openAt = i;
          openRule = rule;
        }
      } else if (bodyEnd > bodyStart) {
        ranges.push({ from: i, start: bodyStart, end: bodyEnd });
      } else if (!final) {
        (bare ??= []).push({ from: i, start: bodyEnd, end: bodyEnd });
      }
      skipUntil = Math.max(skipUntil, bodyEnd);
    }
    // A secret that is a prefix of a longer one at the same offset is hidden by the alternation order
    // (longest first), which is what masking wants anyway.
    let enterOpen: PrefixRule | undefined;
    if (openAt !== -1) {
      if (buf.length - openAt > MAX_OPEN_TOKEN && openRule) {
        const bodyStart = openAt + openRule.prefix.length;
        ranges.push({ from: openAt, start: bodyStart, end: buf.length });
        limit = buf.length;
        enterOpen = openRule;
      } else {
        limit = Math.min(limit, openAt);
      }
    }
    const merged = mergeRanges(ranges);
    // A match straddling the limit waits whole for the next write (merged ranges are disjoint and sorted,
    // so one backward pass settles it); this keeps a prefix and its value together. A bare prefix that
    // straddles it waits too, so that the next pass skips the same prefixes inside it as a one-shot pass.
    for (;;) {
      for (let k = merged.length - 1; k >= 0; k--) {
        const r = merged[k]!;
        if (r.end <= limit) break;
        if (r.from < limit) limit = r.from;
      }
      const before = limit;
      for (const b of bare ?? []) if (b.from < limit && b.end > limit) limit = b.from;
      if (limit === before) break;
    }
    this.emit(buf, limit, merged);
    this.pending = limit < buf.length ? Buffer.from(buf.subarray(limit)) : Buffer.alloc(0);
    if (enterOpen) this.openRule = enterOpen;
  }

  /** One write per processed chunk, however many values it masked (each write is a syscall downstream). */
  private emit(buf: Buffer, limit: number, ranges: Range[]): void {
    if (limit === 0) return;
    if (ranges.length === 0 || ranges[0]!.start >= limit) {
      this.out(buf.subarray(0, limit));
      return;
    }
    const parts: Buffer[] = [];
    let pos = 0;
    for (const r of ranges) {
      if (r.start >= limit) break;
      if (r.start > pos) parts.push(buf.subarray(pos, r.start));
      parts.push(MASK);
      pos = r.end;
    }
    if (pos < limit) parts.push(buf.subarray(pos, limit));
    this.out(Buffer.concat(parts));
  }
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

function spanOf(buf: Uint8Array, from: number, chars: Uint8Array): number {
  let i = from;
  while (i < buf.length && chars[buf[i]!] === 1) i++;
  return i;
}

function mergeRanges(ranges: Range[]): Range[] {
  if (ranges.length < 2) return ranges;
  ranges.sort((a, b) => a.from - b.from || b.end - a.end);
  const out: Range[] = [{ ...ranges[0]! }];
  for (const r of ranges.slice(1)) {
    const last = out[out.length - 1]!;
    if (r.from < last.end) {
      last.end = Math.max(last.end, r.end);
      last.start = Math.min(last.start, r.start);
    } else out.push({ ...r });
  }
  return out;
}
