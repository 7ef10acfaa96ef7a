// The stage transport of a job whose stages run detached (detached-stage.ts), for the job that starts them
// and for a successor that continues it. A successor replays the stages that already ended (their output
// from the trace checkpoint on, nothing before it), follows the stage that was running when it took over,
// and starts the rest as the first coordinator would have.

import type { Clock, JobPayload, Logger, TraceCheckpoint } from '../core/index.js';
import { runDetachedStage } from './detached-stage.js';
import { stageFiles, type JobFile, type SessionFile } from './job-records.js';
import type { StageProgress, StageTransport } from './job-session.js';
import { StageShells } from './remote-shell.js';
import type { SshConnection } from './ssh-connection.js';
import type { TraceWriter } from './trace-lines.js';

/** What a successor knows of the session it continues. */
export interface SessionResume {
  /** The stage started last (session.json), undefined when none was. */
  current: SessionFile | undefined;
  /** Whether that stage's output file exists (its launcher got that far). */
  currentStarted: boolean;
  checkpoint: TraceCheckpoint;
}

export interface DetachedTransportOptions {
  conn: SshConnection;
  reconnect: () => Promise<SshConnection>;
  jobDir: string;
  job: JobPayload;
  startedAt: number;
  trace: TraceWriter;
  killGraceMs: number;
  detach?: AbortSignal;
  clock: Clock;
  logger: Logger;
  resume?: SessionResume;
  /** Told of every connection a stage switched to after one dropped. */
  onConnection?: (conn: SshConnection) => void;
  /** The executor style's own state, recorded in job.json with the first stage (MachineJobRecord.state). */
  jobState?: () => unknown;
}

export class DetachedTransport implements StageTransport {
  private conn: SshConnection;
  private shells: StageShells;

  constructor(private readonly o: DetachedTransportOptions) {
    this.conn = o.conn;
    this.shells = new StageShells(o.conn);
  }

  /** Whether a stage was started here (job.json then holds what the first stage recorded). */
  launchedAny = false;

  /** The connection in use now (a reconnect replaces the one the job started with). */
  get connection(): SshConnection {
    return this.conn;
  }

  /** Starts the first stage's shell now (before anything else the job does on the machine). */
  prefetch(): void {
    if (!this.o.resume) this.shells.prefetch();
  }

  close(): void {
    this.shells.close();
  }

  /** job.json: the payload, the start time, and the trace's head (see CheckpointedTrace.head). */
  private jobJson(): string {
    const head = this.o.trace.sink.checkpoints?.head?.();
    const state = this.o.jobState?.();
    const file: JobFile = { job: this.o.job, startedAt: this.o.startedAt, ...(head && { head: Buffer.from(head).toString('base64') }), ...(state !== undefined && { state }) };
    return JSON.stringify(file);
  }

  /** Whether stage `progress.seq` was started by an earlier coordinator (replayed or followed, not launched here). */
  startedBefore(progress: StageProgress): boolean {
    const resume = this.o.resume;
    return progress.replayed !== undefined || (resume?.current?.seq === progress.seq && resume.currentStarted);
  }

  runStage: StageTransport['runStage'] = async (stage, stop, progress) => {
    const { seq } = progress;
    const files = stageFiles(this.o.jobDir, seq);
    const resume = this.o.resume;
    const ckpt = resume?.checkpoint;
    const following = this.startedBefore(progress);
    // Before the checkpoint's stage GitLab has everything: nothing to re-emit. From it on, the trace is heard.
    if (following && ckpt && seq < ckpt.stage) return { exitCode: 0 };
    if (ckpt && seq >= ckpt.stage) this.o.trace.sink.checkpoints?.unmute?.();
    const from = following && ckpt && seq === ckpt.stage ? ckpt.offset : 0;
    const common = {
      conn: this.conn,
      reconnect: this.o.reconnect,
      onConnection: (c: SshConnection) => {
        this.conn = c;
        this.shells.close();
        this.shells = new StageShells(c);
        this.o.onConnection?.(c);
      },
      files,
      from,
      trace: this.o.trace,
      stop,
      killGraceMs: this.o.killGraceMs,
      clock: this.o.clock,
      logger: this.o.logger,
      ...(this.o.detach && { detach: this.o.detach }),
    };
    if (following) return runDetachedStage(common);
    const records = {
      jobId: this.o.job.id,
      sessionJson: JSON.stringify({ seq, name: stage.name, ends: progress.ends, ...(progress.scriptStartedAt !== undefined && { scriptStartedAt: progress.scriptStartedAt }) }),
      ...(seq === 1 && !resume && { jobJson: this.jobJson() }),
    };
    this.launchedAny = true;
    return runDetachedStage({ ...common, launch: { script: () => stage.script, records, channel: this.shells.take(progress.last) } });
  };
}
