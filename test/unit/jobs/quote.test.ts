import { describe, expect, it } from 'vitest';
import { quote, words, op } from '../../../src/jobs/quote.js';
import { UnsupportedJobError } from '../../../src/jobs/index.js';

/** Reads back one bash word made of bare characters and '…' segments (what quote emits). */
function unquote(word: string): string {
  let out = '';
  let i = 0;
  while (i < word.length) {
    const c = word[i]!;
    if (c === "'") {
      const end = word.indexOf("'", i + 1);
      expect(end).toBeGreaterThan(i);
      out += word.slice(i + 1, end);
      i = end + 1;
    } else if (c === '\\') {
      out += word[i + 1];
      i += 2;
    } else {
      expect(c).toMatch(/[A-Za-z0-9_@%+,./:-]/);
      out += c;
      i++;
    }
  }
  return out;
}

describe('quote', () => {
  it('leaves plain words bare and quotes everything else', () => {
    expect(quote('abc/def-1.2:x@y%z+,')).toBe('abc/def-1.2:x@y%z+,');
    expect(quote('')).toBe("''");
    expect(quote('a b')).toBe("'a b'");
    expect(quote('a=b')).toBe("'a=b'");
    expect(quote('~')).toBe("'~'");
    expect(quote("it's")).toBe("'it'\\''s'");
  });

  it('round-trips every character U+0001..U+00FF alone and together', () => {
    let all = '';
    for (let c = 1; c <= 0xff; c++) {
      const ch = String.fromCharCode(c);
      all += ch;
      expect(unquote(quote(ch))).toBe(ch);
      expect(unquote(quote(`x${ch}y`))).toBe(`x${ch}y`);
    }
    const value = `${all}\n''''\n$(rm -rf /)\`x\`${all}`;
    expect(unquote(quote(value))).toBe(value);
  });

  it('never leaves `$`, backquotes, globs or newlines outside single quotes', () => {
    for (const v of ['$HOME', '`id`', '*', 'a\nb', '!x', '"q"', '\\', '{a,b}', '#c', 'x;y', 'a|b', '&']) {
      const q = quote(v);
      expect(q.startsWith("'")).toBe(true);
      expect(q.endsWith("'")).toBe(true);
    }
  });

  it('refuses NUL, which no shell word can hold', () => {
    expect(() => quote('a\0b')).toThrow(UnsupportedJobError);
  });

  it('joins words, quoting values and keeping operators', () => {
    expect(words(['git', 'remote', 'add', 'origin', 'a b', op('>/dev/null')])).toBe("git remote add origin 'a b' >/dev/null");
  });
});
