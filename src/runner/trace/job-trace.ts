// What executors write into: UTF-8 repair → masking → output limit → spool file. It also keeps the
// checkpoints a successor coordinator regenerates the trace from (trace-checkpoints.ts).

import type { CheckpointedTrace, TraceCheckpoint, TraceSink } from '../../core/trace.js';
import { FileTraceLog } from './file-trace-log.js';
import { StreamMasker, type MaskerOptions } from './masker.js';
import { TraceCheckpoints } from './trace-checkpoints.js';
import { Utf8Repair } from './utf8.js';

export interface JobTraceOptions {
  /** A trace continued by a successor from this checkpoint: the spool starts at its byte count, and what
   *  is written is muted until `checkpoints.unmute()` (it regenerates what GitLab already has). */
  resumeFrom?: TraceCheckpoint;
  /** Stored as they are before anything else (the trace's head as the first coordinator recorded it). */
  prefill?: Uint8Array;
}

export class JobTrace implements TraceSink {
  readonly log: FileTraceLog;
  readonly checkpoints: CheckpointedTrace;
  private readonly masker: StreamMasker;
  private readonly utf8: Utf8Repair;
  private readonly points: TraceCheckpoints;
  private muted: boolean;

  constructor(spoolPath: string, limitBytes: number, masking: MaskerOptions, o: JobTraceOptions = {}) {
    const base = o.resumeFrom;
    this.log = new FileTraceLog(spoolPath, limitBytes, 'create', base && { bytes: base.bytes, crc: base.crc });
    this.masker = new StreamMasker(masking, (b) => this.log.append(b));
    this.utf8 = new Utf8Repair((b) => this.masker.write(b));
    if (o.prefill?.length) this.log.append(o.prefill);
    // A checkpoint at stage 0 regenerates everything: nothing to mute.
    this.muted = base !== undefined && base.stage > 0;
    this.points = new TraceCheckpoints({
      held: () => this.utf8.heldBytes + this.masker.heldBytes,
      exact: () => !this.masker.insideToken && !this.log.isTruncated,
      size: () => this.log.size,
      crc: () => this.log.crcValue,
    });
    if (base) this.points.seed(base);
    this.checkpoints = {
      mark: (stage, rawEnd) => {
        if (!this.muted) this.points.mark(stage, rawEnd);
      },
      checkpoint: () => this.points.best(),
      unmute: () => {
        this.muted = false;
      },
      inexact: () => this.log.forgetChecksum(),
      whole: () => {
        const size = this.log.size;
        if (size === 0 || this.log.isTruncated || this.points.stored() !== size) return undefined;
        return { stage: 0, offset: 0, bytes: size, crc: this.log.crcValue };
      },
      head: () => {
        if (this.utf8.heldBytes + this.masker.heldBytes > 0 || this.log.isTruncated || this.log.baseOffset > 0) return undefined;
        return this.log.readSync(0, this.log.size);
      },
    };
  }

  /** Nothing more enters the trace (handoff: what follows is the successor's to regenerate). */
  freeze(): void {
    this.muted = true;
  }

  /** What GitLab has confirmed storing (the job channel): checkpoints are chosen at or below it. */
  set storedBytes(f: () => number) {
    this.points.stored = f;
  }

  write(chunk: string | Uint8Array): void {
    if (this.muted) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    if (buf.length) this.utf8.write(buf);
  }

  addSecrets(values: readonly string[]): void {
    this.masker.addSecrets(values);
  }

  /** Bytes held in memory by the pipeline (masking tail); the rest is on disk. */
  get bufferedBytes(): number {
    return this.masker.heldBytes;
  }

  flush(): void {
    if (this.muted) return;
    this.utf8.flush();
    this.masker.flush();
  }
}

/** Secrets to mask for a job: masked variable values and the job token. */
export function secretsOf(job: { token: string; variables: ReadonlyArray<{ value: string; masked?: boolean }> }): string[] {
  return [job.token, ...job.variables.filter((v) => v.masked).map((v) => v.value)];
}
