// Builds one stage script. Every payload value reaches the text through `quote` (via `words`); the only
// unquoted text is our own constant shell syntax (`op`, `raw`) and the user's own script lines.

import { BASH_LIB, BASH_LIB_ORDER, type BashLibName } from './bashlib.js';
import { isShellName, op, quote, words, type Word } from './quote.js';

// printf escapes (not raw bytes) keep the script printable; GitLab's colours (helpers/ansi.go).
const RESET = '\\033[0;m';
const BOLD_GREEN = '\\033[32;1m';
const YELLOW = '\\033[0;33m';
const BOLD_RED = '\\033[31;1m';
const BOLD_CYAN = '\\033[36;1m';
const CLEAR = '\\033[0K';
/** Section timestamps: bash 5's EPOCHSECONDS needs no process; other shells run `date`. */
const NOW = '"${EPOCHSECONDS:-$(date +%s)}"';

export interface Section {
  /** GitLab's section name: get_sources, step_script, … ([A-Za-z0-9_.-] only). */
  name: string;
  /** The collapsible header shown in the job log. */
  header: string;
}

export interface FinishOptions {
  section: Section;
  /** CI_DEBUG_TRACE: `set -o xtrace`. */
  debugTrace: boolean;
  /** after_script: a failure is printed as a warning and the stage still exits 0. */
  ignoreErrors?: boolean;
  /** The script may run under a POSIX `sh` (user stages in a job image without bash: busybox ash,
   *  dash): `pipefail` only where the shell knows it, since dash aborts on an unknown `set -o`. */
  portable?: boolean;
}

/** pipefail where the shell has it: bash says so by its version (no process; BASH_VERSINFO, which a job
 *  cannot export into another shell, not BASH_VERSION, which it can); any other shell is asked in a
 *  subshell, since a POSIX sh without it (dash) stops at `set -o pipefail` under errexit. The subshell is
 *  a fork, 3 ms on the bench's machine, on every user stage's path. */
export const PORTABLE_PIPEFAIL = 'if [ -n "${BASH_VERSINFO:-}" ] || (set -o pipefail) 2>/dev/null; then set -o pipefail; fi';

export class ShellWriter {
  private readonly lines: string[] = [];
  private readonly libs = new Set<BashLibName>(['messages']);
  private depth = 0;

  /** With FF_ENABLE_BASH_EXIT_CODE_CHECK, user commands are followed by an explicit status check
   *  (catches `false && x`); off by default, as in GitLab, so `cmd && other` idioms keep working. */
  constructor(private readonly exitCodeCheck = false) {}

  /** Our own constant shell code. Never pass payload data: use `command` for anything with values. */
  raw(code: string): void {
    this.lines.push('  '.repeat(this.depth) + code);
  }

  /** A command line; strings are quoted, `op(...)` parts are written as is. */
  command(...parts: Word[]): void {
    this.raw(words(parts));
  }

  /** `printf FORMAT ARGS…`: a builtin, so nothing here shows up in a process list. */
  printf(format: string, ...args: Word[]): void {
    this.command('printf', format, ...args);
  }

  use(lib: BashLibName): void {
    this.libs.add(lib);
  }

  exportVariable(key: string, value: string): void {
    if (!isShellName(key)) throw new TypeError(`not a shell variable name: ${JSON.stringify(key)}`);
    this.raw(`export ${key}=${quote(value)}`);
  }

  /** Writes `content` to `path` with mode 600 using only builtins (the content may be a secret). */
  writePrivateFile(path: string, content: string): void {
    this.command('rm', '-f', path);
    this.command(op('(umask 077 && printf'), '%s', content, op('>'), path, op(')'));
  }

  mkdir(path: string): void {
    // The builtin test spares a process when the directory is there (a pooled machine's second job).
    this.command(op('[ -d'), path, op('] || mkdir -p'), path);
  }

  /** A directory only the job's user can read (file variables, credentials live there). */
  mkdirPrivate(path: string): void {
    // One process either way: chmod an existing directory (a pooled machine's), or make it private.
    this.command(op('if [ -d'), path, op(']; then chmod 700'), path, op('; else mkdir -p -m 700'), path, op('; fi'));
  }

  /** Creates the directory private if it is missing; one made by mkdirPrivate earlier in the job is left
   *  as it is (a builtin test: no process for the common case). */
  ensurePrivateDir(path: string): void {
    this.command(op('[ -d'), path, op('] || (umask 077 && mkdir -p'), path, op(')'));
  }

  /** Creates the file if it is missing, without a process (`touch` would be one). */
  ensureFile(path: string): void {
    this.command(op(':'), op('>>'), path);
  }

  rmTree(path: string): void {
    this.command('rm', '-rf', path);
  }

  cd(path: string): void {
    this.command('cd', path);
  }

  ifFile(path: string): void {
    this.ifCommand(op('[ -f'), path, op(']'));
  }

  ifDirectory(path: string): void {
    this.ifCommand(op('[ -d'), path, op(']'));
  }

  ifCommand(...parts: Word[]): void {
    this.raw(`if ${words(parts)}; then`);
    this.depth++;
  }

  else(): void {
    this.depth--;
    this.raw('else');
    this.depth++;
  }

  endIf(): void {
    this.depth--;
    this.raw('fi');
  }

  echo(text: string): void {
    this.printf('%s\\n', text);
  }

  notice(text: string): void {
    this.printf(`${BOLD_GREEN}%s${RESET}\\n`, text);
  }

  warning(text: string): void {
    this.printf(`${YELLOW}%s${RESET}\\n`, text);
  }

  error(text: string): void {
    this.printf(`${BOLD_RED}%s${RESET}\\n`, text);
  }

  emptyLine(): void {
    this.raw('echo');
  }

  /** A line of the user's job script: echoed as GitLab does (green `$ cmd`, multi-line collapsed), then
   *  run as written. Not indented: a heredoc in it must keep its terminator at column 0. */
  userCommand(command: string): void {
    const cmd = command.trim();
    if (cmd === '') {
      this.emptyLine();
      return;
    }
    const [first = '', ...rest] = cmd.split('\n');
    this.notice(rest.length > 0 ? `$ ${first} # collapsed multi-line command` : `$ ${first}`);
    this.lines.push(cmd);
    if (this.exitCodeCheck) {
      this.lines.push('_fr_rc=$?; if [ "$_fr_rc" -ne 0 ]; then exit "$_fr_rc"; fi');
    }
  }

  /** The script body alone (what runs inside the stage's `eval`), for tests and debugging. A portable body
   *  (a user stage, which may run in a job image without bash) sets pipefail where the shell has it. */
  body(debugTrace: boolean, portable = false): string {
    const head = portable
      ? ['set -e', PORTABLE_PIPEFAIL, 'set +o noclobber']
      : ['set -eo pipefail', 'set +o noclobber'];
    if (debugTrace) head.push('set -o xtrace');
    const libs = BASH_LIB_ORDER.filter((l) => this.libs.has(l)).map((l) => BASH_LIB[l]);
    return [...head, ...libs, ...this.lines].join('\n') + '\n';
  }

  /**
   * The complete script for `bash --noprofile --norc -s`. The body runs as `eval '(<body>)' </dev/null`:
   * bash reads the script itself from stdin, so the job's commands must get a stdin of their own (empty)
   * or `cat` in a job would swallow the rest of the script; and the user's text stays one
   * quoted word, so it cannot break the wrapper. The section end is printed from an EXIT trap, so a failing
   * stage still closes its section; the stage's exit status is the body's.
   */
  finish(options: FinishOptions): string {
    const { name, header } = options.section;
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new TypeError(`bad section name: ${JSON.stringify(name)}`);
    const out = [
      "trap 'exit 1' TERM",
      words([
        'printf',
        `section_start:%s:%s\\r${CLEAR}${BOLD_CYAN}%s${RESET}\\n`,
        op(NOW),
        name,
        header,
      ]),
      `_fr_section_end() { ${words(['printf', `section_end:%s:%s\\r${CLEAR}\\n`, op(NOW), name])}; }`,
      'trap _fr_section_end EXIT',
      // The body runs in a subshell, so errexit ends the subshell with the failing command's status (bash
      // 5.2 reports 1 when errexit fires directly inside an eval). Its stdin is /dev/null rather than
      // GitLab's `: |` pipe: the same empty stdin without the two processes a pipeline costs.
      `eval ${quote(`(\n${this.body(options.debugTrace, options.portable)})`)} </dev/null`,
    ];
    if (options.ignoreErrors) {
      out.push(
        '_fr_rc=$?',
        `if [ "$_fr_rc" -ne 0 ]; then ${words(['printf', `${YELLOW}%s%s${RESET}\\n`, 'WARNING: after_script failed, but job will continue unaffected: exit code ', op('"$_fr_rc"')])}; fi`,
        'exit 0',
      );
    } else {
      out.push('exit "$?"');
    }
    return out.join('\n') + '\n';
  }
}
