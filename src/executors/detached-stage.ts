// A stage that runs detached from the SSH connection: the connection that starts it (or a later one) only
// follows its output file by offset, so a dropped connection, or a coordinator that is replaced, does not
// stop it. On the machine (files: job-records.ts):
//   launcher  the pre-opened stage shell (StageShells) reads, on stdin: the job's records (job.json on the
//             first stage, session.json on every stage) and the stage script; it starts the stage in a
//             process group of its own (what killCommand stops) with its output to <n>.out,
//             sends that file down the channel (tail --pid=<stage>), waits for the stage, writes its exit
//             status (128+signal when it was killed) to <n>.exit and exits with it. It writes
//             nothing itself and has no terminal, so a dropped connection only ends its tail.
//   follower  after a drop, or in a successor: tail from the last byte received until <n>.exit exists or
//             the launcher is gone, then exit with the recorded status.
// A stage that exits 255 and a follower that found no exit status look alike: the exit file tells them apart.

import type { ClientChannel } from 'ssh2';

import { MachineLostError, errorMessage, type Clock, type Logger, type TraceSink } from '../core/index.js';
import { REMOTE_SHELL_COMMAND, killCommand, shellInput, shellQuote, stageInput, type StageExit } from './remote-shell.js';
import { appendSessionLine, otherJobsRemovedLines, writeCheckpointCommand, writeFileLines, type StageFiles } from './job-records.js';
import type { SshConnection } from './ssh-connection.js';

/** The reason the checkpoint ticker is cancelled with: abort() without one makes a DOMException, stack and
 *  all, for every stage followed. */
const TICKER_OFF = new Error('stage followed to its end');

/** The coordinator handed the job to a successor: the stage goes on, nobody here follows it any more. */
export class HandedOffError extends MachineLostError {
  constructor() {
    super('the job was handed to a successor coordinator');
  }
}

/** tail's poll interval for the launcher's stage, which is also how often tail wakes while the stage is
 *  quiet: 100 wakeups a second per job cost little on a machine of its own, but a thousand followers on one
 *  host left its CPUs no time for anything else. The stage's end is not waited for by polling: tail follows
 *  the output by name (-F), so it also watches the job's directory, and the exit status file appearing in it
 *  wakes tail at once to see the stage gone (measured: the same 11 ms from the stage's end to tail's as at
 *  a 10 ms poll). The poll is only what is left when that file cannot be made. */
const LAUNCHER_POLL_S = '1';
/** The follower's tail waits on a loop that looks for the exit file every 0.1 s; it polls as often. */
const FOLLOWER_POLL_S = '0.1';
/** How often the trace checkpoint is written to the machine while a stage runs (when it moved). It only
 *  serves a coordinator that was killed (one that is stopped writes a fresh one as it hands off), and an
 *  older one costs the successor only regenerating more of the stage's output from the machine's file;
 *  each write is a command on the job's connection. At 10 s those were 49 ms of 321 busy in a 12 s profile
 *  of 100 jobs whose trace GitLab takes every 3 s (the largest part after the PATCHes). */
export const STAGE_CHECKPOINT_EVERY_MS = 30_000;
/** The same for the Docker executor's prepare phase, before any stage: a different checkpoint (the whole
 *  trace GitLab confirmed, which a successor appends after), over a phase of seconds to minutes. */
export const PREPARE_CHECKPOINT_EVERY_MS = 10_000;

/** After the follower: exit with the recorded status, or 255 and a line when there is none. */
export function exitFromFile(f: StageFiles): string[] {
  return [
    // Written in place by the launcher: found empty, it is being written; read once more. A status that is
    // still not a number (a launcher killed between creating and writing it) is no status at all.
    `if [ -e ${shellQuote(f.exit)} ]; then read -r rc < ${shellQuote(f.exit)} || { sleep 0.1; read -r rc < ${shellQuote(f.exit)}; }`,
    `  case $rc in '' | *[!0-9]*) ;; *) exit "$rc" ;; esac`,
    `fi`,
    `echo "fleetrunner: stage ${f.seq} ended without recording an exit status" >&2`,
    `exit 255`,
  ];
}

export interface LaunchRecords {
  /** job.json's content (first stage only). */
  jobJson?: string;
  sessionJson: string;
  /** Other jobs' directories under the same parent are removed (left by a job whose clean-up failed). */
  jobId: number;
}

/** What the launcher shell reads on stdin. It stays the stage's parent: it waits for it and records its
 *  exit status, so it must not die with the connection. It has no terminal and writes nothing itself
 *  (only its tail does), so a dropped connection costs it nothing but the tail.
 *  A process start costs more than anything else it does (7-9 ms for an exec, 2-3 ms for a fork on the
 *  bench's machine), and a warm pickup crosses two launchers before the user's first command: the records
 *  are written by the shell's own redirections (job-records.ts), the exit status too (a reader that finds
 *  it empty reads it again). What is left on a stage's path: its fork and bash, tail's start, and on the
 *  first stage the job directory's `mkdir`. */
export function launcherInput(f: StageFiles, script: string, records: LaunchRecords): string {
  const d = shellQuote(f.dir);
  return [
    // The records are private; the stage gets the machine's own umask back (in the docker style a job
    // image's user other than root must be able to reach what the machine's stages create).
    // Noted by the waiting shell (REMOTE_SHELL_COMMAND, remote-shell.ts), off the stage's path; asked
    // here only when not.
    '__fr_umask=${__fr_umask:-$(umask)}',
    'umask 077',
    `[ -d ${d} ] || mkdir -p ${d} || exit 1`,
    ...(records.jobJson !== undefined ? [...otherJobsRemovedLines(f.dir), ...writeFileLines(`${f.dir}/job.json`, records.jobJson, false)] : []),
    `${appendSessionLine(f.dir, records.sessionJson)} || exit 1`,
    ...writeFileLines(f.script, stageInput(script, f.pid), false),
    `printf '%s\n' "$$" > ${shellQuote(`${f.dir}/${f.seq}.wpid`)}`,
    `: > ${shellQuote(f.out)} || exit 1`,
    // The stage in a process group of its own: that group is what a stop kills, never this shell. Job
    // control (`set -m`) gives a background job its own group without a `setsid` process start; a
    // non-interactive shell prints no job notices, and the stage's SIGINT and SIGQUIT are not left ignored
    // as a plain `&` would leave them. The stage stays in the launcher's session (neither has a terminal).
    'set -m',
    // A bash of its own, not this subshell sourcing the script (an exec less): the user's code must see
    // its own shell as gitlab-runner's does (`$$` its process group, so `kill -- -$$` stops the stage and
    // not this launcher; a top-level `return` an error; `$0` and BASH_SOURCE a script's).
    `( umask "$__fr_umask"; exec bash --noprofile --norc ${shellQuote(f.script)} ) </dev/null >>${shellQuote(f.out)} 2>&1 &`,
    `s=$!`,
    'set +m',
    `tail -c +1 -s ${LAUNCHER_POLL_S} -F --pid="$s" ${shellQuote(f.out)} &`,
    `t=$!`,
    `wait "$s"; rc=$?`,
    // In place, by the shell itself (an `mv` held every stage's end up by 8 ms). Its creation wakes tail,
    // which watches the directory, to see the stage gone and drain. A reader that finds it empty (between
    // its creation and the write) reads it again.
    `printf '%s\n' "$rc" > ${shellQuote(f.exit)}`,
    `wait "$t"`,
    `exit "$rc"`,
    '',
  ].join('\n');
}

/** Follows a stage already started, from raw byte `from` of its output, until it ends. */
export function followCommand(f: StageFiles, from: number): string {
  const exit = shellQuote(f.exit);
  return [
    `[ -e ${shellQuote(f.out)} ] || { echo "fleetrunner: stage ${f.seq} was never started" >&2; exit 255; }`,
    `wp=$(cat ${shellQuote(`${f.dir}/${f.seq}.wpid`)} 2>/dev/null)`,
    // The writer to wait for: a loop of our own (tail needs a pid), ending with the exit file or the wrapper.
    `( while [ ! -e ${exit} ] && { [ -z "$wp" ] || kill -0 "$wp" 2>/dev/null; }; do sleep 0.1; done ) &`,
    `tail -c +${from + 1} -s ${FOLLOWER_POLL_S} -F --pid="$!" ${shellQuote(f.out)}`,
    ...exitFromFile(f),
  ].join('\n');
}

export interface DetachedStageOptions {
  /** The job's connection; replaced by `reconnect` after it drops. */
  conn: SshConnection;
  /** A new connection to the same machine; rejects when the machine cannot be reached. */
  reconnect: () => Promise<SshConnection>;
  /** Told of every connection the stage switched to. */
  onConnection?: (conn: SshConnection) => void;
  files: StageFiles;
  /** Start the stage (its script and records) — or, when absent, follow one already started. The script is
   *  asked for when the launcher is sent it (again if the connection dropped before it ran), so a stage that
   *  runs for hours keeps no copy of it (a stage's script carries the job's variables). */
  launch?: { script: () => string; records: LaunchRecords; channel?: Promise<ClientChannel> };
  /** Raw byte of the output file to follow from (0 for a stage started here). */
  from: number;
  trace: TraceSink;
  /** Aborting stops the stage's process group. */
  stop: AbortSignal;
  killGraceMs: number;
  /** Handoff: stop following without stopping the stage (rejects with HandedOffError). */
  detach?: AbortSignal;
  clock: Clock;
  logger: Logger;
}

type Followed = { kind: 'exit'; exit: StageExit } | { kind: 'lost' } | { kind: 'detached' };

/** Resolves with the stage's exit ({ signal } when it was stopped through `stop`). Rejects with
 *  MachineLostError when the machine cannot be reached again, HandedOffError on `detach`. */
export async function runDetachedStage(o: DetachedStageOptions): Promise<StageExit> {
  const state: FollowState = { conn: o.conn, offset: o.from, stopped: false };
  let launch = o.launch;
  for (;;) {
    if (o.detach?.aborted) {
      void launch?.channel?.then((ch) => ch.end(), () => undefined);
      throw new HandedOffError();
    }
    let channel: ClientChannel;
    try {
      if (launch) {
        channel = await (launch.channel ?? state.conn.exec(REMOTE_SHELL_COMMAND));
        channel.end(shellInput(launcherInput(o.files, launch.script(), launch.records)));
      } else {
        channel = await state.conn.exec(followCommand(o.files, state.offset));
      }
    } catch (e) {
      if (!(e instanceof MachineLostError) || !state.conn.lost) throw e;
      await reconnect(o, state);
      if (launch) launch = { ...launch, channel: undefined }; // the launcher never ran: start it again
      continue;
    }
    const started = launch !== undefined;
    launch = undefined;
    const r = await follow(o, state, channel);
    if (r.kind === 'exit') {
      if ('exitCode' in r.exit && r.exit.exitCode === 255) return await exitOf255(o, state);
      if (state.stopped) return 'signal' in r.exit ? r.exit : { signal: 'TERM' };
      return r.exit;
    }
    if (r.kind === 'detached') throw new HandedOffError();
    // The connection dropped: the stage goes on; follow it again from the last byte we have.
    o.logger.warn({ stage: o.files.seq, offset: state.offset, launched: started }, 'connection lost while following a stage; reconnecting');
    await reconnect(o, state);
  }
}

async function reconnect(o: DetachedStageOptions, state: { conn: SshConnection }): Promise<void> {
  const lost = state.conn.lost?.message ?? `lost the connection to ${state.conn.target}`;
  try {
    state.conn = await o.reconnect();
  } catch (e) {
    if (o.detach?.aborted) throw new HandedOffError();
    throw new MachineLostError(`${lost} while following stage ${o.files.seq}, and could not reconnect: ${errorMessage(e)}`);
  }
  o.onConnection?.(state.conn);
}

/** 255: the stage's own status, or the follower saying it found none; the exit file tells which. */
async function exitOf255(o: DetachedStageOptions, state: { conn: SshConnection; stopped: boolean }): Promise<StageExit> {
  const exit = shellQuote(o.files.exit);
  // Written in place by the launcher: found empty, it is being written; read it again.
  const out = await state.conn.output(`[ -s ${exit} ] || sleep 0.1; cat ${exit} 2>/dev/null || true`);
  const n = Number.parseInt(out.trim(), 10);
  if (Number.isInteger(n)) return state.stopped ? { signal: 'TERM' } : { exitCode: n };
  throw new MachineLostError(`stage ${o.files.seq} ended without recording an exit status (${state.conn.target})`);
}

interface FollowState {
  conn: SshConnection;
  /** Raw bytes of the output file received so far. */
  offset: number;
  stopped: boolean;
  /** The checkpoint last written to the machine (JSON). */
  lastCheckpoint?: string;
}

function follow(o: DetachedStageOptions, state: FollowState, channel: ClientChannel): Promise<Followed> {
  const conn = state.conn;
  const checkpoints = o.trace.checkpoints;
  return new Promise<Followed>((resolve) => {
    const ticker = new AbortController();
    let settled = false;
    const finish = (r: Followed) => {
      if (settled) return;
      settled = true;
      ticker.abort(TICKER_OFF);
      o.stop.removeEventListener('abort', onStop);
      o.detach?.removeEventListener('abort', onDetach);
      offLost();
      resolve(r);
    };
    const offLost = conn.onLost(() => finish({ kind: 'lost' }));
    channel.on('data', (chunk: Buffer) => {
      if (settled) return;
      state.offset += chunk.length;
      o.trace.write(chunk);
      checkpoints?.mark(o.files.seq, state.offset);
    });
    // While the stage runs, the checkpoint follows what GitLab confirmed (a quiet stage too: GitLab may
    // confirm output that came before it went quiet).
    if (checkpoints) {
      void (async () => {
        for (;;) {
          await o.clock.sleep(STAGE_CHECKPOINT_EVERY_MS, ticker.signal);
          const c = checkpoints.checkpoint();
          const text = c && JSON.stringify(c);
          if (!c || text === state.lastCheckpoint) continue;
          state.lastCheckpoint = text;
          await conn.control(writeCheckpointCommand(o.files.dir, c)).catch(() => undefined);
        }
      })().catch(() => undefined);
    }
    // The follower's own complaints (never the stage's output, which is in the file): the log.
    channel.stderr.on('data', (d: Buffer) => o.logger.warn({ stage: o.files.seq, stderr: d.toString('utf8').trim().slice(0, 500) }, 'stage follower'));
    channel.on('close', (code?: number | null, signalName?: string) => {
      if (settled) return;
      if (conn.lost) return finish({ kind: 'lost' });
      if (typeof code === 'number') return finish({ kind: 'exit', exit: { exitCode: code } });
      if (signalName) return finish({ kind: 'exit', exit: { signal: signalName.replace(/^SIG/, '') } });
      finish({ kind: 'lost' });
    });
    const onStop = () => {
      if (settled || state.stopped) return;
      state.stopped = true;
      // The follower goes on and ends with the stage's recorded status (128+signal) once the group is gone.
      void conn.output(killCommand(o.files.pid, o.killGraceMs)).catch((e: unknown) => o.logger.warn({ stage: o.files.seq, err: errorMessage(e) }, 'could not stop the stage'));
    };
    const onDetach = () => {
      channel.close();
      finish({ kind: 'detached' });
    };
    o.stop.addEventListener('abort', onStop, { once: true });
    o.detach?.addEventListener('abort', onDetach, { once: true });
    if (o.stop.aborted) onStop();
    if (o.detach?.aborted) onDetach();
  });
}

