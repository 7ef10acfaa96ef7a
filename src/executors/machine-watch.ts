// While a job runs, the coordinator keeps an eye on its machine through the job's own SSH connection, in two
// ways that cost it nothing between events:
// - The interruption notice is pushed, not polled. One exec channel per job runs a bash loop on the machine
//   that looks for the notice every NOTICE_LOOK_S seconds (a builtin test, no process start) and prints it
//   when the agent writes it (the agent asks the cloud every 5 s: EC2 spot's two-minute warning). The
//   coordinator hears nothing until then. A notice aborts the job's stages with a MachineInterruptedError,
//   which the outcome carries to the runner (it may run the job again elsewhere). The loop ends when its
//   channel is closed (its stdin reaches end of file), so nothing of it outlives the job. It starts one
//   look after the job (the first heartbeat reads the notice at once).
// - The heartbeat (the machine's watchdog then knows a coordinator still holds it) is touched through the
//   connection's control shell (control-shell.ts) at once and then every HEARTBEAT_INTERVAL_MS, as for an
//   idle machine; the same command reads the notice, so a notice the channel missed is still seen.
// Only the coordinator touches the heartbeat: a loop on the machine could not tell a coordinator that is
// gone from a connection nobody has closed yet.
//
// Files (ConnectionInfo.stateDir): `heartbeat` (mtime only), `interruption` (JSON {"action", "time"}).

import type { ClientChannel } from 'ssh2';

import { childAbort, type ChildAbort } from '../core/abort.js';
import { MachineInterruptedError, errorMessage, type Clock, type Logger, type MachineInterruption } from '../core/index.js';
import { shellQuote } from './remote-shell.js';
import type { SshConnection } from './ssh-connection.js';

/** How often the heartbeat is touched, idle or busy: well inside the watchdog's smallest idleTimeout
 *  (5 minutes, src/config/limits.ts), so only a coordinator that is gone lets it lapse. */
export const HEARTBEAT_INTERVAL_MS = 60_000;
/** How often the loop on a busy machine looks for the notice: a spot notice gives two minutes, so a few
 *  seconds leave the job's stages time to stop before the machine goes. */
export const NOTICE_LOOK_S = 5;
/** After the notice channel closed without a notice (the machine's shell was killed, say), the pause before
 *  it is opened again. */
const NOTICE_REOPEN_MS = 5_000;
/** Why follow() ends a notice pause (a reason of its own: abort() without one makes a DOMException). */
const RECONNECTED = new Error('the job reconnected');
export const HEARTBEAT_FILE = 'heartbeat';
export const INTERRUPTION_FILE = 'interruption';

const SAFE = /^[A-Za-z0-9:.+_-]{1,64}$/;

/** The notice as the agent wrote it; anything unreadable is still an interruption (action "unknown"). */
export function parseInterruption(text: string): MachineInterruption | undefined {
  if (text.trim() === '') return undefined;
  try {
    const v = JSON.parse(text) as { action?: unknown; time?: unknown };
    const action = typeof v.action === 'string' && SAFE.test(v.action) ? v.action : 'unknown';
    return typeof v.time === 'string' && SAFE.test(v.time) ? { action, time: v.time } : { action };
  } catch {
    return { action: 'unknown' };
  }
}

const inStateDir = (stateDir: string, file: string) => shellQuote(`${stateDir.replace(/\/+$/, '')}/${file}`);

/** Touches the heartbeat: the shell's own redirection, which sets an empty file's mtime as `touch` does,
 *  without a process start. */
export function heartbeatCommand(stateDir: string): string {
  return `: > ${inStateDir(stateDir, HEARTBEAT_FILE)}`;
}

/** Touches the heartbeat and prints the interruption notice when there is one (`cat` runs only then);
 *  status 0 whether or not there is a notice. No `exit`: it runs in a control shell itself. */
export function watchCommand(stateDir: string): string {
  const notice = inStateDir(stateDir, INTERRUPTION_FILE);
  return `${heartbeatCommand(stateDir)} 2>/dev/null; [ ! -e ${notice} ] || cat -- ${notice} 2>/dev/null; :`;
}

/** The loop a busy machine runs on the notice channel: prints the notice once it exists and ends; ends
 *  without output when its stdin ends (the coordinator closed the channel, or the connection went).
 *  `read -t` waits on stdin, which nothing writes to: status above 128 is its timeout, anything else
 *  is the end of input. TMOUT from the environment would bound `read` too; it is unset first (read-only
 *  only in the shell that made it so, remote-shell.ts). */
export function noticeWaitCommand(stateDir: string): string {
  const notice = inStateDir(stateDir, INTERRUPTION_FILE);
  const loop = `unset TMOUT; until [ -e ${notice} ]; do read -r -t ${NOTICE_LOOK_S} _; [ $? -gt 128 ] || exit 0; done; exec cat -- ${notice}`;
  return `exec bash --noprofile --norc -c ${shellQuote(loop)}`;
}

export interface MachineWatchOptions {
  clock: Clock;
  logger: Logger;
  /** Default HEARTBEAT_INTERVAL_MS. */
  heartbeatIntervalMs?: number;
}

export class MachineWatch {
  private readonly interruptCtl = new AbortController();
  private readonly stopCtl = new AbortController();
  private noticeChannel: ClientChannel | undefined;
  /** The notice loop's pause while one runs: follow() ends it at once. Made per pause, not kept for the
   *  job (a signal is ~0.8 KiB, and the loop spends the job in its channel, not in a pause). */
  private noticePause: ChildAbort | undefined;

  constructor(
    private conn: SshConnection,
    private readonly stateDir: string,
    private readonly o: MachineWatchOptions,
  ) {
    void this.heartbeatLoop();
    void this.noticeLoop();
  }

  /** Aborted (reason: MachineInterruptedError) when the machine reports an interruption notice. */
  get interrupted(): AbortSignal {
    return this.interruptCtl.signal;
  }

  stop(): void {
    this.stopCtl.abort();
    this.noticeChannel?.close();
  }

  /** The job reconnected after its connection dropped: the watch goes on through the new one. */
  follow(conn: SshConnection): void {
    this.conn = conn;
    // The old channel went with its connection; closing it again is harmless and ends the wait at once.
    this.noticeChannel?.close();
    this.noticePause?.abort(RECONNECTED);
  }

  private interrupt(notice: MachineInterruption): void {
    if (this.stopCtl.signal.aborted || this.interruptCtl.signal.aborted) return;
    this.o.logger.warn({ action: notice.action, time: notice.time }, 'machine reported an interruption notice: stopping the job');
    this.interruptCtl.abort(new MachineInterruptedError(notice));
  }

  private get done(): boolean {
    return this.stopCtl.signal.aborted || this.interruptCtl.signal.aborted;
  }

  private async heartbeatLoop(): Promise<void> {
    const cmd = watchCommand(this.stateDir);
    while (!this.done) {
      const conn = this.conn;
      try {
        // A dropped connection is skipped until the job reconnects (follow) or ends (stop).
        const notice = conn.lost ? undefined : parseInterruption(await conn.control(cmd));
        if (notice) return this.interrupt(notice);
      } catch (e) {
        // A lost connection is the job's to handle (it reconnects or ends); anything else is tried again.
        if (!conn.lost) this.o.logger.debug({ err: errorMessage(e) }, 'machine watch: heartbeat failed');
      }
      if (!(await this.pause(this.o.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS))) return;
    }
  }

  private async noticeLoop(): Promise<void> {
    const cmd = noticeWaitCommand(this.stateDir);
    // The first heartbeat reads the notice at once; the channel takes over one look later, off the path of
    // the job's first stage (a channel open and a process start on the machine), and never for a job that
    // is over by then.
    if (!(await this.pause(NOTICE_LOOK_S * 1000, true))) return;
    while (!this.done) {
      const conn = this.conn;
      if (!conn.lost) {
        try {
          const notice = parseInterruption(await this.waitForNotice(conn, cmd));
          if (notice) return this.interrupt(notice);
        } catch (e) {
          if (!conn.lost && !this.done) this.o.logger.debug({ err: errorMessage(e) }, 'machine watch: notice channel failed');
        }
      }
      // Closed without a notice: the job ended (stop), it reconnected (follow: at once), or the channel
      // or its connection failed (again after a pause).
      if (this.done) return;
      if (this.conn !== conn && !this.conn.lost) continue;
      if (!(await this.pause(NOTICE_REOPEN_MS, true))) return;
    }
  }

  /** Opens the notice channel and resolves with what it printed once it closes. */
  private async waitForNotice(conn: SshConnection, cmd: string): Promise<string> {
    const ch = await conn.exec(cmd);
    if (this.done || this.conn !== conn) {
      ch.close();
      return '';
    }
    this.noticeChannel = ch;
    return new Promise<string>((resolve) => {
      let out = '';
      let status: number | undefined;
      ch.on('data', (d: Buffer) => (out += d.toString('utf8')));
      ch.stderr.on('data', () => undefined);
      ch.once('exit', (code: unknown) => (status = typeof code === 'number' ? code : undefined));
      ch.once('close', () => {
        if (this.noticeChannel === ch) this.noticeChannel = undefined;
        // Only a `cat` that ran to its end printed a whole notice (not one cut off by a dropped connection).
        resolve(status === 0 ? out : '');
      });
    });
  }

  /** Sleeps `ms` (less when stopped, or, for the notice loop's pause, woken by follow()); false once the
   *  watch was stopped. */
  private async pause(ms: number, noticeLoop = false): Promise<boolean> {
    const pause = noticeLoop ? (this.noticePause = childAbort(this.stopCtl.signal)) : undefined;
    try {
      await this.o.clock.sleep(ms, pause?.signal ?? this.stopCtl.signal);
    } catch {
      // stopped, or woken
    } finally {
      if (pause) {
        pause.release();
        if (this.noticePause === pause) this.noticePause = undefined;
      }
    }
    return !this.done;
  }
}
