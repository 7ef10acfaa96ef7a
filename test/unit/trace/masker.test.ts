import { describe, expect, it } from 'vitest';
import { StreamMasker } from '../../../src/runner/trace/masker.js';

function run(parts: string[], secrets: string[] = [], tokenPrefixes?: string[]): string {
  const out: Buffer[] = [];
  const m = new StreamMasker({ secrets, ...(tokenPrefixes && { tokenPrefixes }) }, (b) => out.push(Buffer.from(b)));
  for (const p of parts) m.write(Buffer.from(p));
  m.flush();
  return Buffer.concat(out).toString();
}

describe('StreamMasker', () => {
  it('replaces a masked value whole', () => {
    expect(run(['password is s3cr3t-value!'], ['s3cr3t-value'])).toBe('password is [MASKED]!');
  });

  it('masks a value split across every possible write boundary', () => {
    const text = 'before SUPERSECRET1234 after';
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j++) {
        expect(run([text.slice(0, i), text.slice(i, j), text.slice(j)], ['SUPERSECRET1234'])).toBe('before [MASKED] after');
      }
    }
  });

  it('masks the longest of overlapping values', () => {
    expect(run(['x abcdef y'], ['abc', 'abcdef'])).toBe('x [MASKED] y');
    expect(run(['abcabc'], ['abc'])).toBe('[MASKED][MASKED]');
  });

  it('trims and ignores empty values', () => {
    expect(run(['a  b'], ['', '   '])).toBe('a  b');
    expect(run(['key=hunter22'], [' hunter22\n'])).toBe('key=[MASKED]');
  });

  it.each([
    ['glpat-imperdiet in velit', 'glpat-[MASKED] in velit'],
    ['esseglpat-imperdiet=_-. end', 'esseglpat-[MASKED] end'],
    ['glpat-impglpat-erdiet x', 'glpat-[MASKED] x'],
    ['Lorglpat- ipsu', 'Lorglpat- ipsu'],
    ['at end glpat-abc', 'at end glpat-[MASKED]'],
    ['runner glrt-abcdefghij done', 'runner glrt-[MASKED] done'],
  ])('keeps a token prefix and masks its body: %j', (input, expected) => {
    expect(run([input])).toBe(expected);
  });

  it('masks prefixed tokens split across writes, including inside the prefix', () => {
    expect(run(['glpat', '-imperdiet Lorem gl', 'pat-imperdiet end'])).toBe('glpat-[MASKED] Lorem glpat-[MASKED] end');
    expect(run(['glpat', ' -imperdiet'])).toBe('glpat -imperdiet');
    expect(run(['x glpat-ab', 'cd', 'ef y'])).toBe('x glpat-[MASKED] y');
  });

  it('masks URL query parameter values', () => {
    expect(run(['GET /x?private_token=abc123&y=1 and ?X-Amz-Signature=deadbeef'])).toBe(
      'GET /x?private_token=[MASKED]&y=1 and ?X-Amz-Signature=[MASKED]',
    );
  });

  it('fully masks a job token that is both a masked value and a prefixed token', () => {
    expect(run(['token glcbt-abcdef123 end'], ['glcbt-abcdef123'])).toBe('token [MASKED] end');
  });

  it('holds back only a bounded tail, even for an endless token', () => {
    const out: Buffer[] = [];
    const m = new StreamMasker({ secrets: [] }, (b) => out.push(Buffer.from(b)));
    m.write(Buffer.from('start glpat-'));
    for (let i = 0; i < 100; i++) m.write(Buffer.alloc(1024, 'a'));
    const emittedBeforeEnd = Buffer.concat(out).toString();
    expect(emittedBeforeEnd).toBe('start glpat-[MASKED]');
    m.write(Buffer.from('aaa tail'));
    m.flush();
    expect(Buffer.concat(out).toString()).toBe('start glpat-[MASKED] tail');
  });

  it('equals a one-shot pass for random splits (fuzz)', () => {
    let seed = 42;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const secrets = ['hunter2hunter2', 'AKIAEXAMPLE', 'p@ss:w/rd'];
    const alphabet = ['a', ' ', '\n', 'hunter2', 'hunter2hunter2', 'glpat-', 'gl', 'pat-', 'AKIA', 'EXAMPLE', 'p@ss:w/rd', '=', '?private_token=', 'x'];
    for (let round = 0; round < 300; round++) {
      let text = '';
      for (let k = 0; k < 20; k++) text += alphabet[rnd(alphabet.length)];
      const whole = run([text], secrets);
      const parts: string[] = [];
      let rest = text;
      while (rest.length) {
        const n = 1 + rnd(Math.min(7, rest.length));
        parts.push(rest.slice(0, n));
        rest = rest.slice(n);
      }
      expect(run(parts, secrets), JSON.stringify(parts)).toBe(whole);
      for (const s of secrets) expect(whole).not.toContain(s);
    }
  });

  it('masks secrets added mid-stream, including bytes still held back', () => {
    const out: Buffer[] = [];
    const m = new StreamMasker({ secrets: ['x-long-enough-secret'] }, (b) => out.push(Buffer.from(b)));
    m.write(Buffer.from('before fresh-registry-pw'));
    m.addSecrets(['fresh-registry-pw']);
    m.write(Buffer.from(' after fresh-registry-pw\n'));
    m.flush();
    expect(Buffer.concat(out).toString()).toBe('before [MASKED] after [MASKED]\n');
  });
});
