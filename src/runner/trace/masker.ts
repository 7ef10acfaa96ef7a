// Streaming secret masking for the job trace (docs/gitlab-protocol.md §6.4), correct across write boundaries and
// bounded in memory: it holds back only the bytes that could still be the start of a secret.
//
// - exact values (masked variables, the job token) are replaced whole by [MASKED];
// - token prefixes (glpat-, glcbt-, …) and URL parameters (private_token=, X-Amz-Signature=, …) keep the
//   prefix and replace the value: "glpat-[MASKED]", as gitlab-runner does.

import { DEFAULT_TOKEN_PREFIXES, alternation, prefixSet, tailMatchers, tailStartOf, type PrefixRule, type PrefixSet, type TailMatcher } from './needles.js';

export { DEFAULT_TOKEN_PREFIXES, URL_PARAMS } from './needles.js';

const MASK = Buffer.from('[MASKED]');

/** An unterminated token longer than this is emitted masked instead of being held back further. */
const MAX_OPEN_TOKEN = 16 * 1024;

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
  /** Exact values, longest first, as latin1 views (one char per byte, as a chunk is searched). */
  private secrets: string[] = [];
  /** The job's own alternation of its secrets: small (a compiled regex grows with its alternatives, and the
   *  twenty prefixes are shared), unset while there is none. */
  private secretPattern: RegExp | undefined;
  private secretTails: TailMatcher[] = [];
  private readonly prefixes: PrefixSet;
  private pending: Buffer = Buffer.alloc(0);
  /** Inside a token body whose prefix and [MASKED] were already emitted. */
  private openRule: PrefixRule | undefined;

  constructor(
    options: MaskerOptions,
    private readonly out: (bytes: Buffer) => void,
  ) {
    this.prefixes = prefixSet(options.tokenPrefixes ?? DEFAULT_TOKEN_PREFIXES);
    this.addSecrets(options.secrets);
  }

  /** Masks more exact values from now on (held-back bytes included). */
  addSecrets(values: readonly string[]): void {
    const known = new Set(this.secrets);
    const added = values
      .map((v) => v.trim())
      .filter((v) => v.length > 0)
      .map((v) => Buffer.from(v).toString('latin1'))
      .filter((v) => !known.has(v) && (known.add(v), true));
    if (!added.length) return;
    this.secrets = [...this.secrets, ...added].sort((a, b) => b.length - a.length);
    this.secretPattern = alternation(this.secrets);
    this.secretTails = tailMatchers(this.secrets.map((s) => Buffer.from(s, 'latin1')));
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
    return tailStartOf(buf, this.secretTails, tailStartOf(buf, this.prefixes.tails, buf.length));
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
    // Two passes of V8's compiled regexes over a latin1 view (one char per byte, so indexes are byte
    // offsets): the job's exact values, then the shared prefixes. Every occurrence counts, overlapping ones
    // too (they merge into one range).
    const text = buf.toString('latin1');
    const sre = this.secretPattern;
    if (sre) {
      sre.lastIndex = 0;
      for (let m = sre.exec(text); m !== null; m = sre.exec(text)) {
        ranges.push({ from: m.index, start: m.index, end: m.index + m[0].length });
        sre.lastIndex = m.index + 1;
      }
    }
    const re = this.prefixes.pattern;
    re.lastIndex = 0;
    let skipUntil = 0; // inside a prefixed token body: its prefixes are part of it
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const i = m.index;
      re.lastIndex = i + 1; // overlapping matches count too
      if (i < skipUntil) continue;
      const rule = this.prefixes.rules.get(m[0])!;
      const bodyStart = i + rule.prefix.length;
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
    // A secret that is a prefix of a longer one at the same offset lies inside the longer one's range.
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
    // One buffer of the output's size, filled by copies: a Buffer per part and a concat cost twice as much
    // on a log with a masked token on every line. The ranges are sorted and disjoint (mergeRanges), so each
    // starts at or after the end of the one before: the count and the copies walk them alike.
    let size = 0;
    let pos = 0;
    for (const r of ranges) {
      if (r.start >= limit) break;
      size += r.start - pos + MASK.length;
      pos = r.end;
    }
    if (pos < limit) size += limit - pos;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    pos = 0;
    for (const r of ranges) {
      if (r.start >= limit) break;
      at += buf.copy(out, at, pos, r.start);
      at += MASK.copy(out, at);
      pos = r.end;
    }
    if (pos < limit) buf.copy(out, at, pos, limit);
    this.out(out);
  }
}

function spanOf(buf: Uint8Array, from: number, chars: Uint8Array): number {
  let i = from;
  while (i < buf.length && chars[buf[i]!] === 1) i++;
  return i;
}

/** Sorted by `from`, overlapping ranges joined. The ranges are this pass's own, so they are changed in place;
 *  prefix matches alone (the common case) come sorted and disjoint already and are returned as they are. */
function mergeRanges(ranges: Range[]): Range[] {
  let ordered = true;
  for (let k = 1; k < ranges.length && ordered; k++) ordered = ranges[k]!.from >= ranges[k - 1]!.end;
  if (ordered) return ranges;
  ranges.sort((a, b) => a.from - b.from || b.end - a.end);
  const out: Range[] = [ranges[0]!];
  for (let k = 1; k < ranges.length; k++) {
    const r = ranges[k]!;
    const last = out[out.length - 1]!;
    if (r.from < last.end) {
      last.end = Math.max(last.end, r.end);
      last.start = Math.min(last.start, r.start);
    } else out.push(r);
  }
  return out;
}
