// The job trace as the executor writes it and as the GitLab uploader reads it.

/** Where executors write job output. Implementations mask secrets and enforce the output limit. */
export interface TraceSink {
  write(chunk: string | Uint8Array): void;
  /** Writes any held-back bytes (masking keeps a tail until it knows no secret spans it). */
  flush(): void;
  /** Secrets learnt during the job (e.g. a short-lived registry password): masked from now on. */
  addSecrets(values: readonly string[]): void;
}

/** The stored, already-masked trace: append-only, read back for PATCHes. */
export interface TraceLog {
  /** Bytes stored so far. */
  readonly size: number;
  /** `crc32:` + 8 lowercase hex over all stored bytes (GitLab's format). */
  checksum(): string;
  read(offset: number, length: number): Promise<Uint8Array>;
}
