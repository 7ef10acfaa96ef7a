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

  it('keeps each job\'s values to its own masker, their writes interleaved (the prefixes are shared)', () => {
    const outA: Buffer[] = [];
    const outB: Buffer[] = [];
    const a = new StreamMasker({ secrets: ['alpha-secret'] }, (b) => outA.push(Buffer.from(b)));
    const b = new StreamMasker({ secrets: ['bravo-secret'] }, (b) => outB.push(Buffer.from(b)));
    a.write(Buffer.from('a: alpha-secret bravo-secret glpat-one'));
    b.write(Buffer.from('b: alpha-secret bravo-secret glpat-two'));
    a.write(Buffer.from(' x glpat-three\n'));
    b.write(Buffer.from(' y\n'));
    a.flush();
    b.flush();
    expect(Buffer.concat(outA).toString()).toBe('a: [MASKED] bravo-secret glpat-[MASKED] x glpat-[MASKED]\n');
    expect(Buffer.concat(outB).toString()).toBe('b: alpha-secret [MASKED] glpat-[MASKED] y\n');
  });

  it('masks a value that is also a token prefix together with the token it begins', () => {
    expect(run(['token glpat-abc123 end'], ['glpat-'])).toBe('token [MASKED] end');
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
    const secrets = ['hunter2hunter2', 'ak1a-sample', 'p@ss:w/rd'];
    const alphabet = ['a', ' ', '\n', 'hunter2', 'hunter2hunter2', 'glpat-', 'gl', 'pat-', 'ak1a', '-sample', 'p@ss:w/rd', '=', '?private_token=', 'x'];
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
    // "fresh-registry-pw" is held: it could still become the longer known secret.
    const m = new StreamMasker({ secrets: ['fresh-registry-pw-old'] }, (b) => out.push(Buffer.from(b)));
    m.write(Buffer.from('before fresh-registry-pw'));
    expect(Buffer.concat(out).toString()).toBe('before ');
    m.addSecrets(['fresh-registry-pw']);
    m.write(Buffer.from(' after fresh-registry-pw\n'));
    m.flush();
    expect(Buffer.concat(out).toString()).toBe('before [MASKED] after [MASKED]\n');
  });
});

/** Feeds byte chunks; returns what was emitted after each write, and the whole output after flush. */
function stream(parts: Uint8Array[], secrets: string[] = [], tokenPrefixes?: string[]) {
  const out: Buffer[] = [];
  const m = new StreamMasker({ secrets, ...(tokenPrefixes && { tokenPrefixes }) }, (b) => out.push(Buffer.from(b)));
  const emitted: string[] = [];
  const held: number[] = [];
  for (const p of parts) {
    m.write(p);
    emitted.push(Buffer.concat(out).toString('latin1'));
    held.push(m.heldBytes);
  }
  m.flush();
  return { emitted, held, all: Buffer.concat(out), heldAfterFlush: m.heldBytes };
}

function oneShot(input: Buffer, secrets: string[], tokenPrefixes?: string[]): Buffer {
  return stream([input], secrets, tokenPrefixes).all;
}

/** Every split of input into 2 writes, and into 3 writes; each must equal the one-shot output. */
function expectAllSplitsEqual(input: Buffer, secrets: string[], tokenPrefixes?: string[]): Buffer {
  const whole = oneShot(input, secrets, tokenPrefixes);
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) {
      const parts = [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
      const got = stream(parts, secrets, tokenPrefixes).all;
      expect(got.equals(whole), `${JSON.stringify(input.toString('latin1'))} split at ${i},${j}: ${got.toString('latin1')}`).toBe(true);
    }
  }
  // Byte by byte too.
  const bytes = [...input].map((b) => Buffer.from([b]));
  expect(stream(bytes, secrets, tokenPrefixes).all.equals(whole)).toBe(true);
  return whole;
}

describe('StreamMasker hold-back (only what could still become a match)', () => {
  it('emits ordinary text that cannot start a secret completely on a non-final write', () => {
    const { emitted, held } = stream([Buffer.from('before-'), Buffer.from('compiling module_1.ts … ok ✓\n')], ['s3cr3t-value', 'hunter2'], undefined);
    expect(emitted[0]).toBe('before-');
    expect(held[0]).toBe(0);
    expect(Buffer.from(emitted[1]!, 'latin1').toString()).toBe('before-compiling module_1.ts … ok ✓\n');
    expect(held[1]).toBe(0);
  });

  it('emits at once even with a long (JWT-like) job token', () => {
    const jwt = `eyJhbGciOiJSUzI1NiJ9.${'x'.repeat(900)}.sig`;
    const { emitted, held } = stream([Buffer.from('$ sleep 60\nbefore-')], [jwt]);
    expect(emitted[0]).toBe('$ sleep 60\nbefore-');
    expect(held[0]).toBe(0);
  });

  it('holds a trailing partial secret and masks it when the rest arrives', () => {
    const { emitted, held, all } = stream([Buffer.from('pw: hun'), Buffer.from('ter2 ok')], ['hunter2']);
    expect(emitted[0]).toBe('pw: ');
    expect(held[0]).toBe(3);
    expect(emitted[1]).toBe('pw: [MASKED] ok');
    expect(held[1]).toBe(0);
    expect(all.toString()).toBe('pw: [MASKED] ok');
  });

  it('emits a held partial as is when it turns out not to be a secret', () => {
    const { emitted, held, all } = stream([Buffer.from('pw: hun'), Buffer.from('gry')], ['hunter2']);
    expect(emitted).toEqual(['pw: ', 'pw: hungry']);
    expect(held).toEqual([3, 0]);
    expect(all.toString()).toBe('pw: hungry');
  });

  it('holds the longest tail that is a proper prefix of a secret (repeated partial prefixes)', () => {
    // "aaab" for secret "aab": "aab" matches at 1; "aa" at the end of "xaa" must be held whole, not just "a".
    expect(stream([Buffer.from('xaa')], ['aab']).held).toEqual([2]);
    expect(stream([Buffer.from('xaa'), Buffer.from('b')], ['aab']).all.toString()).toBe('x[MASKED]');
    expect(stream([Buffer.from('aaa'), Buffer.from('b!')], ['aab']).all.toString()).toBe('a[MASKED]!');
    expect(stream([Buffer.from('abab'), Buffer.from('abc')], ['ababc']).emitted[0]).toBe('');
    expect(stream([Buffer.from('abab'), Buffer.from('abc')], ['ababc']).all.toString()).toBe('ab[MASKED]');
    // A complete short secret at the end is held while it could still be a longer one.
    expect(stream([Buffer.from('x abc')], ['abc', 'abcdef']).emitted[0]).toBe('x ');
    expect(stream([Buffer.from('x abc'), Buffer.from('def y')], ['abc', 'abcdef']).all.toString()).toBe('x [MASKED] y');
    expect(stream([Buffer.from('x abc'), Buffer.from('d y')], ['abc', 'abcdef']).all.toString()).toBe('x [MASKED]d y');
  });

  it('holds a token prefix, or a token running up to the end, at a chunk end', () => {
    expect(stream([Buffer.from('x gl')]).emitted[0]).toBe('x ');
    expect(stream([Buffer.from('x glpat')]).emitted[0]).toBe('x ');
    expect(stream([Buffer.from('x glpat-')]).emitted[0]).toBe('x ');
    expect(stream([Buffer.from('x glpat-abc')]).emitted[0]).toBe('x ');
    expect(stream([Buffer.from('x glpat-abc ')]).emitted[0]).toBe('x glpat-[MASKED] ');
    expect(stream([Buffer.from('x glpat- ')]).emitted[0]).toBe('x glpat- ');
    expect(stream([Buffer.from('GET /?private_tok')]).emitted[0]).toBe('GET /?');
    expect(stream([Buffer.from('GET /?private_token=a%2')]).emitted[0]).toBe('GET /?');
    expect(stream([Buffer.from('x gl'), Buffer.from('pat-abc'), Buffer.from('def y')]).emitted).toEqual(['x ', 'x ', 'x glpat-[MASKED] y']);
  });

  it('equals a one-shot pass for secrets split at every position', () => {
    const secrets = ['hunter2hunter2', 'ak1a-sample', 'p@ss:w/rd'];
    for (const text of ['a hunter2hunter2 b', 'ak1a-sampleak1a-sample', 'xp@ss:w/rdp@ss:w/r', 'hunter2hunter', 'ak1a']) {
      expectAllSplitsEqual(Buffer.from(text), secrets);
    }
  });

  it('equals a one-shot pass for secrets that are prefixes of other secrets', () => {
    const secrets = ['abc', 'abcdef', 'abcdefgh', 'cde'];
    for (const text of ['abcdefgh', 'abcdefg', 'abcde', 'xabcdabcdefabc', 'abcabcdef!', 'ab cd abcde']) {
      const whole = expectAllSplitsEqual(Buffer.from(text), secrets);
      for (const s of ['abc', 'cde']) expect(whole.toString()).not.toContain(s);
    }
  });

  it('equals a one-shot pass for repeated partial prefixes', () => {
    for (const [text, secret] of [
      ['aaab', 'aab'],
      ['aaaaab aab aa', 'aab'],
      ['abababc abab', 'ababc'],
      ['aabaabaaab', 'aabaaab'],
    ] as const) {
      const whole = expectAllSplitsEqual(Buffer.from(text), [secret]);
      expect(whole.toString()).not.toContain(secret);
    }
  });

  it('equals a one-shot pass for token prefixes and URL parameters at chunk ends', () => {
    for (const text of [
      'x glpat-abc y',
      'glpat-glpat-abc',
      'gl glp glpa glpat glpat- glpat-a',
      'esseglpat-imperdiet=_-. end',
      '?private_token=abc%2F~x&rss_token=1',
      'glrtr-abc glrt-def',
      'X-Amz-Signature=dead X-Amz-Security-Token=beef',
    ]) {
      expectAllSplitsEqual(Buffer.from(text), ['abc']);
    }
    // Custom prefixes that overlap each other, and a prefix that contains a non-token character.
    for (const text of ['ab c-d ab-xy b c', 'zab c=1', 'ab ab c']) {
      expectAllSplitsEqual(Buffer.from(text), [], ['ab', 'b c', 'ab-']);
    }
  });

  it('equals a one-shot pass for UTF-8 and latin1 bytes, compared as bytes', () => {
    const secrets = ['café-ünïcödé', 'é€', 'pässwörd'];
    const inputs = [
      Buffer.from('mot: café-ünïcödé, é€uro, pässwörd!'),
      Buffer.from('caf\xe9 p\xe4sswörd \xe9\x80', 'latin1'), // latin1 bytes: not the UTF-8 secrets
      Buffer.concat([Buffer.from('é€'.slice(0, 1)), Buffer.from([0xe2, 0x82]), Buffer.from('x é€')]),
      Buffer.from([0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xc3, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xff]),
    ];
    for (const input of inputs) {
      const whole = expectAllSplitsEqual(input, secrets);
      for (const s of secrets) expect(whole.includes(Buffer.from(s))).toBe(false);
    }
    // A latin1 "é" (0xe9) is not the UTF-8 "é" (c3 a9): nothing held, nothing masked.
    const latin1 = stream([Buffer.from('caf\xe9', 'latin1')], ['é€']);
    expect(latin1.held).toEqual([0]);
    expect(latin1.all.equals(Buffer.from('caf\xe9', 'latin1'))).toBe(true);
    // Split inside a multi-byte character of a secret.
    const split = stream([Buffer.from([0x78, 0xc3]), Buffer.from([0xa9, 0xe2, 0x82]), Buffer.from([0xac, 0x79])], ['é€']);
    expect(split.emitted.slice(0, 2)).toEqual(['x', 'x']);
    expect(split.all.toString()).toBe('x[MASKED]y');
  });

  it('equals a one-shot pass for random byte splits, emitting only final-output prefixes (fuzz)', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const secrets = ['aab', 'aabaab', 'hunter2', 'é€', 'glpat-x', 'p@ss'];
    const alphabet = ['a', 'b', 'aa', 'aab', ' ', 'hunt', 'er2', 'é', '€', '\xe9', 'gl', 'pat-', 'x', 'p@', 'ss', '?rss_token=', '%2', '\n'];
    for (let round = 0; round < 400; round++) {
      let text = '';
      for (let k = 0; k < 24; k++) text += alphabet[rnd(alphabet.length)];
      const input = Buffer.from(text);
      const whole = oneShot(input, secrets);
      const parts: Buffer[] = [];
      for (let pos = 0; pos < input.length; ) {
        const n = 1 + rnd(Math.min(9, input.length - pos));
        parts.push(input.subarray(pos, pos + n));
        pos += n;
      }
      const r = stream(parts, secrets);
      expect(r.all.equals(whole), JSON.stringify(parts.map((p) => p.toString('latin1')))).toBe(true);
      expect(r.heldAfterFlush).toBe(0);
      // Every non-final emission is a prefix of the final output.
      for (const e of r.emitted) expect(whole.subarray(0, Buffer.byteLength(e, 'latin1')).toString('latin1')).toBe(e);
    }
  });
});
