// Variable expansion as gitlab-runner does it (Go's os.Expand with spec.Variables' mapping), in pure
// TypeScript: once, at plan time, never by the shell.

import { posix } from 'node:path';
import type { JobVariable } from '../core/index.js';

export const TEMP_DIR_KEY = 'RUNNER_TEMP_PROJECT_DIR';

const SPECIAL = new Set(['*', '#', '$', '@', '!', '?', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
const isNameChar = (c: string): boolean => /^[A-Za-z0-9_]$/.test(c);

/** Os.Expand's getShellName: the name after a `$` and how many characters it spans ("" + >0 = bad syntax). */
function shellName(s: string): [string, number] {
  const c0 = s[0] ?? '';
  if (c0 === '{') {
    const c1 = s[1] ?? '';
    if (s.length > 2 && SPECIAL.has(c1) && s[2] === '}') return [c1, 3];
    const close = s.indexOf('}', 1);
    if (close === 1) return ['', 2]; // "${}": eaten
    if (close < 0) return ['', 1]; // "${" without "}": eaten
    return [s.slice(1, close), close + 1];
  }
  if (SPECIAL.has(c0)) return [c0, 1];
  let i = 0;
  while (i < s.length && isNameChar(s[i] ?? '')) i++;
  return [s.slice(0, i), i];
}

/**
 * The value of `name` for expansion: `$$` is `$`, positional and special parameters are empty, otherwise
 * the LAST definition's value as given (not itself expanded), or a file variable's path. Undefined → "".
 */
export function lookupVariable(name: string, variables: readonly JobVariable[]): string {
  if (name === '$') return '$';
  if (SPECIAL.has(name)) return '';
  for (let i = variables.length - 1; i >= 0; i--) {
    const v = variables[i];
    if (v?.key !== name) continue;
    return v.file ? fileVariablePath(v.key, variables) : v.value;
  }
  return '';
}

/** Where a file variable's content is written: `$RUNNER_TEMP_PROJECT_DIR/<KEY>`. */
export function fileVariablePath(key: string, variables: readonly JobVariable[]): string {
  let dir = '';
  for (let i = variables.length - 1; i >= 0; i--) {
    const v = variables[i];
    if (v?.key === TEMP_DIR_KEY) {
      dir = v.value;
      break;
    }
  }
  return posix.join(dir, key);
}

/** Expands `$VAR`, `${VAR}` and `$$` in `value` against `variables` (see lookupVariable). */
export function expandVariables(value: string, variables: readonly JobVariable[]): string {
  let out = '';
  let i = 0;
  for (let j = 0; j < value.length; j++) {
    if (value[j] !== '$' || j + 1 >= value.length) continue;
    out += value.slice(i, j);
    const [name, width] = shellName(value.slice(j + 1));
    if (name === '' && width > 0) {
      // bad syntax: the characters are dropped, as os.Expand does
    } else if (name === '') {
      out += '$'; // "$" not followed by a name stays
    } else {
      out += lookupVariable(name, variables);
    }
    j += width;
    i = j + 1;
  }
  return out + value.slice(i);
}
