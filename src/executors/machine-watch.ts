// While a job runs, the coordinator keeps an eye on its machine through the job's own SSH connection: one
// short command every few seconds, through the connection's control shell (control-shell.ts, no channel
// per look), that touches the heartbeat (the machine's watchdog then knows a coordinator still holds it) and reads the interruption notice the machine's agent writes when the cloud
// announces it will take the machine back (EC2 spot). A notice aborts the job's stages with a
// MachineInterruptedError, which the outcome carries to the runner (it may run the job again elsewhere).
//
// Files (ConnectionInfo.stateDir): `heartbeat` (mtime only), `interruption` (JSON {"action", "time"}).

import { MachineInterruptedError, errorMessage, type Clock, type Logger, type MachineInterruption } from '../core/index.js';
import { shellQuote } from './remote-shell.js';
import type { SshConnection } from './ssh-connection.js';

/** How often a busy machine is looked at: a spot notice gives two minutes, so five seconds leaves the
 *  job's stages time to stop before the machine goes. */
export const MACHINE_WATCH_INTERVAL_MS = 5_000;
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

/** Touches the heartbeat (an idle machine's held connection does this every minute): the shell's own
 *  redirection, which sets an empty file's mtime as `touch` does, without a process start (a look every
 *  few seconds per job, and a host may carry many machines' shells). */
export function heartbeatCommand(stateDir: string): string {
  return `: > ${inStateDir(stateDir, HEARTBEAT_FILE)}`;
}

/** Touches the heartbeat and prints the interruption notice when there is one (`cat` runs only then);
 *  status 0 whether or not there is a notice. No `exit`: it runs in a control shell itself. */
export function watchCommand(stateDir: string): string {
  const notice = inStateDir(stateDir, INTERRUPTION_FILE);
  return `${heartbeatCommand(stateDir)} 2>/dev/null; [ ! -e ${notice} ] || cat -- ${notice} 2>/dev/null; :`;
}

export interface MachineWatchOptions {
  clock: Clock;
  logger: Logger;
  /** Default MACHINE_WATCH_INTERVAL_MS. */
  intervalMs?: number;
}

export class MachineWatch {
  private readonly interruptCtl = new AbortController();
  private readonly stopCtl = new AbortController();

  constructor(
    private conn: SshConnection,
    private readonly stateDir: string,
    private readonly o: MachineWatchOptions,
  ) {
    void this.loop();
  }

  /** Aborted (reason: MachineInterruptedError) when the machine reports an interruption notice. */
  get interrupted(): AbortSignal {
    return this.interruptCtl.signal;
  }

  stop(): void {
    this.stopCtl.abort();
  }

  /** The job reconnected after its connection dropped: the watch goes on through the new one. */
  follow(conn: SshConnection): void {
    this.conn = conn;
  }

  private async loop(): Promise<void> {
    const cmd = watchCommand(this.stateDir);
    while (!this.stopCtl.signal.aborted) {
      const conn = this.conn;
      try {
        // A dropped connection is skipped until the job reconnects (follow) or ends (stop).
        const notice = conn.lost ? undefined : parseInterruption(await conn.control(cmd));
        if (notice && !this.stopCtl.signal.aborted) {
          this.o.logger.warn({ action: notice.action, time: notice.time }, 'machine reported an interruption notice: stopping the job');
          this.interruptCtl.abort(new MachineInterruptedError(notice));
          return;
        }
      } catch (e) {
        // A lost connection is the job's to handle (it reconnects or ends); anything else is tried again.
        if (!conn.lost) this.o.logger.debug({ err: errorMessage(e) }, 'machine watch: look failed');
      }
      try {
        await this.o.clock.sleep(this.o.intervalMs ?? MACHINE_WATCH_INTERVAL_MS, this.stopCtl.signal);
      } catch {
        return;
      }
    }
  }
}
