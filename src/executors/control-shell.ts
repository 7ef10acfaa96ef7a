// One long-lived shell per SSH connection for the short housekeeping commands a running job sends every few
// seconds (the machine watch's heartbeat and spot look, the trace checkpoint). Opening an exec channel for
// each costs a channel open, an exec request, a close and a process start on the machine: at a thousand jobs
// that was most of the coordinator's CPU (README "One coordinator for many jobs"). Here each command is a
// few bytes on a channel that stays open.
//
// Framing: each command runs in the shell itself, as a group with no stdin and no stderr (a subshell per
// command was a fork each time, the most a running job cost its machine); then a line with a fresh random
// marker and its exit status follows on stdout. So a command must leave the shell as it found it: no
// `exit`, no `cd`, no variables (the commands are the coordinator's own: the watch's look, the checkpoint). Its output is what came before that line. Commands run one
// at a time, in order, so one that hangs would hold up the rest (the spot-notice look among them): each has
// a deadline, past which it fails and its shell is closed; the next command opens a new one, as it does
// after a shell that ended. Commands are the coordinator's own, quoted with shellQuote: a command must be
// complete shell text (balanced quotes and parentheses), or the shell waits for the rest of it until the
// deadline.

import { randomUUID } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel } from 'ssh2';

import { systemClock, type Clock } from '../core/clock.js';

/** The shell that reads the commands: bash, which every machine has (a Fargate job's image gets it from the
 *  agent bundle, and may have no sh of its own). */
export const CONTROL_SHELL_COMMAND = 'exec bash --noprofile --norc -s';
/** A housekeeping command is a touch, a cat or a rename: one still running after this is stuck. */
export const CONTROL_COMMAND_TIMEOUT_MS = 20_000;
/** The reason a command's deadline is cancelled with once it answered: abort() without one makes a
 *  DOMException, stack and all, for every heartbeat and checkpoint of every job. */
const ANSWERED = new Error('control command answered');

interface Pending {
  marker: string;
  resolve(out: string): void;
  reject(e: Error): void;
}

export interface ControlShellOptions {
  clock?: Clock;
  /** Default CONTROL_COMMAND_TIMEOUT_MS. */
  timeoutMs?: number;
}

export class ControlShell {
  private channel: Promise<ClientChannel> | undefined;
  private pending: Pending | undefined;
  private buffer = '';
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `open`: an exec channel running CONTROL_SHELL_COMMAND (rejects when the connection is gone). */
  constructor(
    private readonly open: (command: string) => Promise<ClientChannel>,
    private readonly o: ControlShellOptions = {},
  ) {}

  /** Runs `command` (stdout only) and resolves with its output; rejects on a non-zero exit status, on its
   *  deadline, and once the shell was closed for good. */
  run(command: string): Promise<string> {
    const next = this.chain.then(() => this.runNow(command));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Ends the shell for good (the connection is being closed): commands still queued fail. */
  close(): void {
    this.closed = true;
    this.endShell();
  }

  private async runNow(command: string): Promise<string> {
    if (this.closed) throw new Error('the connection to the machine was closed');
    const channel = await this.shell();
    const marker = `__fr_ctl_${randomUUID().replaceAll('-', '')}`; // unguessable by a command's output
    const deadline = new AbortController();
    const timeoutMs = this.o.timeoutMs ?? CONTROL_COMMAND_TIMEOUT_MS;
    try {
      return await new Promise<string>((resolve, reject) => {
        this.pending = { marker, resolve, reject };
        (this.o.clock ?? systemClock).sleep(timeoutMs, deadline.signal).then(
          () => {
            if (this.pending?.marker !== marker) return;
            this.pending = undefined;
            reject(new Error(`housekeeping command still running after ${Math.round(timeoutMs / 1000)} s`));
            this.endShell();
          },
          () => undefined,
        );
        channel.write(`{\n${command}\n} </dev/null 2>/dev/null; printf '\\n%s %d\\n' '${marker}' "$?"\n`);
      });
    } finally {
      deadline.abort(ANSWERED);
    }
  }

  private endShell(): void {
    const ch = this.channel;
    this.channel = undefined;
    void ch?.then((c) => c.close()).catch(() => undefined);
  }

  private shell(): Promise<ClientChannel> {
    if (this.channel) return this.channel;
    const opening = this.open(CONTROL_SHELL_COMMAND).then((ch) => {
      this.buffer = '';
      const decoder = new StringDecoder('utf8');
      ch.on('data', (d: Buffer) => this.received(opening, decoder.write(d)));
      ch.stderr.on('data', () => undefined);
      ch.on('close', () => {
        if (this.channel === opening) this.channel = undefined;
        const p = this.pending;
        this.pending = undefined;
        p?.reject(new Error('the control shell on the machine ended'));
      });
      return ch;
    });
    this.channel = opening;
    opening.catch(() => {
      if (this.channel === opening) this.channel = undefined;
    });
    return opening;
  }

  private received(from: Promise<ClientChannel>, text: string): void {
    // Output of a shell already given up on (a command past its deadline) belongs to no command.
    if (from !== this.channel) return;
    this.buffer += text;
    const p = this.pending;
    if (!p) {
      this.buffer = '';
      return;
    }
    // The end line: "\n<marker> <status>\n" (found with indexOf: a regex per command would be compiled once each).
    const at = this.buffer.indexOf(`\n${p.marker} `);
    if (at === -1) return;
    const statusAt = at + p.marker.length + 2;
    const eol = this.buffer.indexOf('\n', statusAt);
    if (eol === -1) return;
    const status = this.buffer.slice(statusAt, eol);
    const out = this.buffer.slice(0, at);
    this.buffer = this.buffer.slice(eol + 1);
    this.pending = undefined;
    const code = /^\d+$/.test(status) ? Number(status) : -1;
    if (code === 0) p.resolve(out);
    else p.reject(new Error(`housekeeping command failed (exit ${code})`));
  }
}
