// One long-lived shell per SSH connection for the short housekeeping commands a running job sends every few
// seconds (the machine watch's heartbeat and spot look, the trace checkpoint). Opening an exec channel for
// each costs a channel open, an exec request, a close and a process start on the machine: at a thousand jobs
// that was most of the coordinator's CPU (README "One coordinator for many jobs"). Here each command is a
// few bytes on a channel that stays open.
//
// Framing: each command runs in a subshell with no stdin and no stderr; then a line with a fresh random
// marker and its exit status follows on stdout. Its output is what came before that line. Commands run one
// at a time, in order. A channel that closes fails the command in flight (and those queued behind it)
// and the next command opens a new shell.

import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';

/** The shell that reads the commands (no profile: nothing of the login environment is needed). */
export const CONTROL_SHELL_COMMAND = 'exec bash --noprofile --norc -s';

interface Pending {
  marker: string;
  resolve(out: string): void;
  reject(e: Error): void;
}

export class ControlShell {
  private channel: Promise<ClientChannel> | undefined;
  private pending: Pending | undefined;
  private buffer = '';
  private chain: Promise<unknown> = Promise.resolve();

  /** `open`: an exec channel running CONTROL_SHELL_COMMAND (rejects when the connection is gone). */
  constructor(private readonly open: (command: string) => Promise<ClientChannel>) {}

  /** Runs `command` (stdout only) and resolves with its output; rejects on a non-zero exit status. */
  run(command: string): Promise<string> {
    const next = this.chain.then(() => this.runNow(command));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Ends the shell (its stdin closes; it exits). */
  close(): void {
    const ch = this.channel;
    this.channel = undefined;
    void ch?.then((c) => c.end()).catch(() => undefined);
  }

  private async runNow(command: string): Promise<string> {
    const channel = await this.shell();
    const marker = `__fr_ctl_${randomBytes(8).toString('hex')}`;
    return new Promise<string>((resolve, reject) => {
      this.pending = { marker, resolve, reject };
      channel.write(`(\n${command}\n) </dev/null 2>/dev/null; printf '\\n%s %d\\n' '${marker}' "$?"\n`);
    });
  }

  private shell(): Promise<ClientChannel> {
    if (this.channel) return this.channel;
    const opening = this.open(CONTROL_SHELL_COMMAND).then((ch) => {
      this.buffer = '';
      ch.on('data', (d: Buffer) => this.received(d.toString('utf8')));
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

  private received(text: string): void {
    this.buffer += text;
    const p = this.pending;
    if (!p) {
      this.buffer = '';
      return;
    }
    const m = new RegExp(`\\n${p.marker} (\\d+)\\n`).exec(this.buffer);
    if (!m) return;
    const out = this.buffer.slice(0, m.index);
    this.buffer = this.buffer.slice(m.index + m[0].length);
    this.pending = undefined;
    const code = Number(m[1]);
    if (code === 0) p.resolve(out);
    else p.reject(new Error(`housekeeping command failed (exit ${code})`));
  }
}
