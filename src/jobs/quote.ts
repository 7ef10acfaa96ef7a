// The only place where a value becomes shell text. Everything the writer emits that did not come from a
// string constant in this module's callers passes through `quote`.

import { UnsupportedJobError } from './errors.js';

// Words made only of these need no quoting; anything else (spaces, quotes, `$`, `~`, `=`, globs, control
// bytes, non-ASCII) is single-quoted. `=` is left out so a bare word can never read as an assignment.
const SAFE_WORD = /^[A-Za-z0-9_@%+,./:-]+$/;

/**
 * Quotes `value` as one bash word with the same bytes. Single quotes keep every byte literal (newlines,
 * backslashes, `$`, `!`, control characters); a `'` inside closes the quote, adds `\'` and reopens it.
 * NUL cannot exist in a bash word, so a value containing it is refused rather than silently cut.
 */
export function quote(value: string): string {
  if (value.includes('\0')) {
    throw new UnsupportedJobError('a value contains a NUL character, which a shell variable cannot hold');
  }
  if (SAFE_WORD.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Static shell syntax (operators, redirections, `"$var"` references) written by our own code. */
export interface ShellOp {
  readonly op: string;
}

/** A command word: a value to quote, or a static operator that is written as is. */
export type Word = string | ShellOp;

/** Marks a string constant as shell syntax. Never pass user or payload data here. */
export function op(syntax: string): ShellOp {
  return { op: syntax };
}

/** Joins words into one command line, quoting every value. */
export function words(parts: readonly Word[]): string {
  return parts.map((p) => (typeof p === 'string' ? quote(p) : p.op)).join(' ');
}

/** True for names bash accepts in `export NAME=…` and `$NAME`. */
export function isShellName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
