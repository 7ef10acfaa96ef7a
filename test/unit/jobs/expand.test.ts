import { describe, expect, it } from 'vitest';
import type { JobVariable } from '../../../src/core/index.js';
import { expandVariables } from '../../../src/jobs/index.js';

const vars: JobVariable[] = [
  { key: 'A', value: 'first' },
  { key: 'B', value: 'bee' },
  { key: 'A', value: 'last' },
  { key: 'REF', value: '$B' },
  { key: 'RUNNER_TEMP_PROJECT_DIR', value: '/b/p.tmp' },
  { key: 'KEY', value: 'secret', file: true },
];

describe('expandVariables (gitlab-runner rules)', () => {
  it.each([
    ['$B', 'bee'],
    ['${B}', 'bee'],
    ['x${B}y$B', 'xbeeybee'],
    ['$A', 'last'], // last definition wins
    ['$$B', '$B'], // $$ is a literal $
    ['$$', '$'],
    ['$UNDEFINED-', '-'],
    ['${UNDEFINED}', ''],
    ['$1$@$*$#$?$!$0$-', ''], // positional and special parameters are empty
    ['${1}', ''],
    ['$REF', '$B'], // expanded once: a referenced value is not expanded again
    ['$KEY', '/b/p.tmp/KEY'], // a file variable expands to its path
    ['a$', 'a$'], // a trailing $ stays
    ['$ x', '$ x'], // so does a $ not followed by a name
    ['${}x', 'x'], // bad syntax is dropped, as os.Expand does
    ['${B', 'B'],
    ['${B:-d}', ''], // no shell operators: the whole thing is a (missing) name
    ['$B_x', ''], // names run over underscores and digits
    ['ünï$B', 'ünïbee'],
  ])('%s → %s', (input, want) => {
    expect(expandVariables(input, vars)).toBe(want);
  });
});
