// The job trace as the executor writes it and as the GitLab uploader reads it.

/** Where executors write job output. Implementations mask secrets and enforce the output limit. */
export interface TraceSink {
  write(chunk: string | Uint8Array): void;
  /** Writes any held-back bytes (masking keeps a tail until it knows no secret spans it). */
  flush(): void;
  /** Secrets learnt during the job (e.g. a short-lived registry password): masked from now on. */
  addSecrets(values: readonly string[]): void;
  /** Present when the trace can be regenerated from the machine's records (see CheckpointedTrace). */
  readonly checkpoints?: CheckpointedTrace;
}

/** The stored, already-masked trace: append-only, read back for PATCHes. */
export interface TraceLog {
  /** Bytes stored so far. */
  readonly size: number;
  /** `crc32:` + 8 lowercase hex over all stored bytes (GitLab's format). */
  /** crc32 of the stored bytes; undefined when they are known not to match GitLab's copy byte for byte
   *  (see CheckpointedTrace.inexact): the final state then carries none. */
  checksum(): string | undefined;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Calls `listener` with the new size each time the stored size grows, until the returned function is
   *  called (the uploader wakes once a full piece is waiting). Optional: a log without it is looked at
   *  only on the uploader's ticks. */
  onGrowth?(listener: (size: number) => void): () => void;
}

/**
 * A point from which a successor can regenerate a job's trace: the stored trace's first `bytes` bytes
 * (CRC-32 `crc` over them) are exactly what the pipeline made of everything before raw byte `offset` of
 * stage `stage`'s output file on the machine (stage 0: before any stage, from the start of the trace).
 */
export interface TraceCheckpoint {
  stage: number;
  offset: number;
  bytes: number;
  crc: number;
}

/** A trace whose raw stage output is also kept on the machine, so it can be regenerated from a checkpoint. */
export interface CheckpointedTrace {
  /** The raw output of stage `stage` written so far ends at byte `rawEnd` of its output file. */
  mark(stage: number, rawEnd: number): void;
  /** The newest checkpoint at or below what GitLab has confirmed storing; undefined before any. */
  checkpoint(): TraceCheckpoint | undefined;
  /** Regenerated output before this point is already in GitLab's copy: it was muted until now. */
  unmute?(): void;
  /** The whole stored trace so far, when the pipeline holds nothing back (asked before the first stage:
   *  the runner's own lines, which a successor could not regenerate byte for byte). */
  head?(): Uint8Array | undefined;
  /** A successor that cannot regenerate the earlier coordinator's bytes (it prepares the job again): GitLab
   *  keeps its copy and takes what follows it, and the final state claims no checksum. */
  inexact?(): void;
  /** Before any stage (the runner's own lines, e.g. a docker job's prepare): when GitLab has confirmed the
   *  whole stored trace, that point as a stage-0 checkpoint — a successor appends after it rather than
   *  regenerating anything. */
  whole?(): TraceCheckpoint | undefined;
}


/** A continued trace goes on after what GitLab has, regenerating nothing (a stage-0 checkpoint with bytes:
 *  CheckpointedTrace.whole, taken before any stage). */
export function appendsAfter(c: TraceCheckpoint): boolean {
  return c.stage === 0 && c.bytes > 0;
}
