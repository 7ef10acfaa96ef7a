// Runs one stage script on the machine over an exec channel (no pty) and streams its output into the trace.
//
// The remote bash runs in its own session (setsid), so its pid is the process group of everything the
// script starts. A preamble writes that pid to a file before the script runs; stopping the stage opens a
// second channel that sends SIGTERM to the group, then SIGKILL after a grace period. A "cancel" marker
// closes the race where the stop request arrives before the pid file is written.

import { randomBytes } from 'node:crypto';

import type { ClientChannel } from 'ssh2';

import { MachineLostError, type TraceSink } from '../core/index.js';
import type { SshConnection } from './ssh-connection.js';

/** How a stage's remote process ended. */
export type StageExit = { exitCode: number } | { signal: string };

/** The last line of every script sent to REMOTE_SHELL_COMMAND (shellInput): only a script that arrived
 *  whole is run. */
const END_OF_INPUT = '#__fleetrunner_end_of_input__';

/** `setsid -w` waits for the new session's leader and passes on its exit status. The script is read whole,
 *  then run: it always ends with the channel's end of input. `bash -s` (and a plain `read`) would read a
 *  pipe one byte at a time, a system call each: ~25 ms for a first stage carrying job.json. `read -N`
 *  reads in blocks (bash ≥ 5.1; older ones still read it all, byte by byte); the count is only a bound.
 *  A shell opened ahead may wait for hours, and an exported TMOUT (hardened images set one, often
 *  read-only) would end its read: an empty or cut-off script would then run as if whole and end 0. So the
 *  shell unsets it first (read-only binds only the shell that made it so; the environment carries the
 *  value alone), rather than reading with `read -t`: bash then blocks two signals around every byte it
 *  reads, 540,000 system calls and 0.65 s of CPU for a 270 KB job.json against 71 reads and 10 ms
 *  without. A script without its last line (END_OF_INPUT) is not run: exit 255, which a stage reads as
 *  "no exit status recorded" (a system failure), never as success. The shell notes the machine's umask
 *  (`__fr_umask`) while it waits: a command substitution is a fork, 3 ms on the bench's host, and the
 *  launcher, which makes its records private, needs the umask to give the stage back. */
// `__fr_umask` is read by the stage launcher (detached-stage.ts, launcherInput).
export const REMOTE_SHELL_COMMAND = `exec setsid -w bash --noprofile --norc -c 'unset TMOUT; __fr_umask=$(umask); IFS= read -r -N 1000000000 __fr_input; case $__fr_input in *"${END_OF_INPUT}") ;; *) echo "fleetrunner: the stage shell did not get its whole script" >&2; exit 255;; esac; eval "$__fr_input"'`;

/** What goes down a REMOTE_SHELL_COMMAND channel: the script and the line that says it is whole. */
export function shellInput(script: string): string {
  return `${script}\n${END_OF_INPUT}`;
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * What goes to the remote bash on stdin: record the pgid, honour an early cancel, then run the script with
 * stdin from /dev/null (read whole first, so a command reading stdin cannot swallow the rest of the script).
 */
export function stageInput(script: string, pidFile: string, makeDir?: string, dirMayExist = false): string {
  let eof: string;
  do eof = `__FLEETRUNNER_EOF_${randomBytes(8).toString('hex')}__`;
  while (script.includes(eof));
  const f = shellQuote(pidFile);
  return [
    // The job's run directory, made by its first stage (no round trip of its own). Its name is random and
    // mkdir fails if it exists, so nobody can have prepared it; a stop that came first made it (see
    // killCommand) and this stage then ends here.
    ...(makeDir === undefined
      ? []
      : dirMayExist
        ? [`[ -d ${shellQuote(makeDir)} ] || mkdir -m 700 ${shellQuote(makeDir)} || exit 1`]
        : [`mkdir -m 700 ${shellQuote(makeDir)} || exit 1`]),
    `printf '%s\\n' "$$" > ${f} || exit 1`,
    `if [ -e ${f}.cancel ]; then exit 143; fi`,
    // `read -N` (a bound, not a count) takes the here-document in blocks on bash ≥ 5.1 (older ones read it
    // byte by byte either way); `-d ''` read it one byte a system call: ~6,000 reads and ~10 ms for a
    // first stage, on every warm pickup's path.
    `IFS= read -r -N 1000000000 __fleetrunner_script <<'${eof}'`,
    script,
    eof,
    `eval "$__fleetrunner_script" </dev/null`,
    '',
  ].join('\n');
}

/** Remote command that stops the stage's process group: TERM, then KILL after `graceMs`. */
export function killCommand(pidFile: string, graceMs: number): string {
  const f = shellQuote(pidFile);
  const dir = shellQuote(pidFile.slice(0, Math.max(1, pidFile.lastIndexOf('/'))));
  const rounds = Math.max(1, Math.ceil(graceMs / 100));
  return [
    // A first stage stopped before it started has not made the run directory yet: make it, so the marker
    // can be left (and that stage's own mkdir fails, which ends it).
    `[ -d ${dir} ] || mkdir -m 700 ${dir} 2>/dev/null`,
    `: > ${f}.cancel`,
    `pg=$(cat ${f} 2>/dev/null)`,
    `[ -n "$pg" ] || exit 0`,
    `kill -TERM -- "-$pg" 2>/dev/null || exit 0`,
    `i=0`,
    `while [ "$i" -lt ${rounds} ] && kill -0 -- "-$pg" 2>/dev/null; do sleep 0.1; i=$((i+1)); done`,
    `kill -KILL -- "-$pg" 2>/dev/null`,
    `exit 0`,
  ].join('\n');
}

/** ssh2's close arguments: the exit code, or null and the signal ("SIGTERM"); nothing when the server sent neither. */
export function channelExit(code: number | null | undefined, signalName: string | undefined): StageExit | undefined {
  if (typeof code === 'number') return { exitCode: code };
  if (signalName) return { signal: signalName.replace(/^SIG/, '') };
  return undefined;
}

export interface RemoteStageOptions {
  conn: SshConnection;
  script: string;
  /** Absolute path on the machine, unique per job and stage. */
  pidFile: string;
  trace: TraceSink;
  /** Aborting stops the remote process group. */
  stop: AbortSignal;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs: number;
  /** After the kill, how long to wait for the channel to close before giving up on it. Default 5 s. */
  closeWaitMs?: number;
  /** A channel already opened with REMOTE_SHELL_COMMAND (see StageShells); default: open one now. */
  channel?: Promise<ClientChannel>;
  /** The pid file's directory, made by the stage if missing (mode 700). */
  makeDir?: string;
  /** Another stage may have made `makeDir` already; otherwise an existing one is refused (first stage). */
  dirMayExist?: boolean;
}

/**
 * Opens each stage's remote shell one stage ahead: the next bash is started (sshd session, login shell,
 * setsid, bash: ~15 ms) while the current stage runs, and waits on its stdin for the script. A stage
 * therefore costs its own commands plus one round trip, not a process start-up. The shell left over at
 * the end reads end-of-file and exits without running anything.
 */
export class StageShells {
  private next: Promise<ClientChannel> | undefined;

  constructor(private readonly conn: SshConnection) {}

  /** Starts the first shell now (before anything else the job does on the machine). */
  prefetch(): void {
    this.next ??= this.open();
  }

  /** A shell for the stage about to run; the one after it starts opening at once, unless this stage is
   *  the `last` (a shell nobody takes still costs the machine a session and three process starts). */
  take(last = false): Promise<ClientChannel> {
    const ch = this.next ?? this.open();
    this.next = this.conn.lost || last ? undefined : this.open();
    return ch;
  }

  /** Lets go of the shell opened ahead (end of the job). */
  close(): void {
    const left = this.next;
    this.next = undefined;
    void left?.then((ch) => ch.end(), () => undefined);
  }

  private open(): Promise<ClientChannel> {
    // An idle-pool connection comes with its first shell started already (MachineConnections.warm).
    const p = this.conn.takeAhead(REMOTE_SHELL_COMMAND) ?? this.conn.exec(REMOTE_SHELL_COMMAND);
    p.catch(() => undefined); // an unused prefetch may fail with the connection; whoever takes it sees the error
    return p;
  }
}

/**
 * Resolves with the exit of the remote script, or `{ signal }` when it was stopped through `stop`.
 * Rejects with MachineLostError when the connection drops.
 */
export async function runRemoteStage(o: RemoteStageOptions): Promise<StageExit> {
  if (o.stop.aborted) {
    void o.channel?.then((ch) => ch.end(), () => undefined);
    return { signal: 'TERM' };
  }
  const channel = await (o.channel ?? o.conn.exec(REMOTE_SHELL_COMMAND));
  return new Promise<StageExit>((resolve, reject) => {
    let stopped = false;
    let settled = false;
    let forceTimer: NodeJS.Timeout | undefined;

    const finish = (err: Error | undefined, value?: StageExit) => {
      if (settled) return;
      settled = true;
      clearTimeout(forceTimer);
      o.stop.removeEventListener('abort', onStop);
      offLost();
      if (err) reject(err);
      else resolve(value!);
    };
    const offLost = o.conn.onLost((e) => finish(e));

    // Output goes to the trace as it arrives; nothing here holds more than one chunk.
    channel.on('data', (chunk: Buffer) => o.trace.write(chunk));
    channel.stderr.on('data', (chunk: Buffer) => o.trace.write(chunk));
    // The exit status comes with 'close' (ssh2 repeats it there): an 'exit' listener attached after the
    // exec callback can miss a fast command whose whole answer arrived in one read.
    channel.on('close', (code?: number | null, signalName?: string) => {
      const exit = channelExit(code, signalName);
      if (o.conn.lost) return finish(o.conn.lost);
      if (stopped) return finish(undefined, exit && 'signal' in exit ? exit : { signal: 'TERM' });
      if (exit) return finish(undefined, exit);
      finish(new MachineLostError(`stage channel closed without an exit status (${o.conn.target})`));
    });

    const onStop = () => {
      if (settled || stopped) return;
      stopped = true;
      void stopRemote(o).then(
        () => {
          // Processes that left the group may still hold the channel's stdout open: do not wait forever.
          // The stage may have ended while the kill ran: then there is nothing to wait for (a timer armed
          // after finish() would hold the process up to 5 s at exit).
          if (settled) return;
          forceTimer = setTimeout(() => {
            channel.close();
            finish(undefined, { signal: 'KILL' });
          }, o.closeWaitMs ?? 5_000);
          forceTimer.unref();
        },
        (e: unknown) => finish(e instanceof Error ? e : new Error(String(e))),
      );
    };
    o.stop.addEventListener('abort', onStop, { once: true });

    channel.end(shellInput(stageInput(o.script, o.pidFile, o.makeDir, o.dirMayExist)));
    if (o.stop.aborted) onStop();
  });
}

async function stopRemote(o: RemoteStageOptions): Promise<void> {
  const ch = await o.conn.exec(killCommand(o.pidFile, o.killGraceMs));
  await new Promise<void>((resolve, reject) => {
    const off = o.conn.onLost((e) => reject(e));
    ch.on('close', () => {
      off();
      resolve();
    });
    ch.resume();
    ch.stderr.resume();
  });
}
