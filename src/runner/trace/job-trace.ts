// What executors write into: UTF-8 repair → masking → output limit → spool file.

import type { TraceSink } from '../../core/trace.js';
import { FileTraceLog } from './file-trace-log.js';
import { StreamMasker, type MaskerOptions } from './masker.js';
import { Utf8Repair } from './utf8.js';

export class JobTrace implements TraceSink {
  readonly log: FileTraceLog;
  private readonly masker: StreamMasker;
  private readonly utf8: Utf8Repair;

  constructor(spoolPath: string, limitBytes: number, masking: MaskerOptions) {
    this.log = new FileTraceLog(spoolPath, limitBytes);
    this.masker = new StreamMasker(masking, (b) => this.log.append(b));
    this.utf8 = new Utf8Repair((b) => this.masker.write(b));
  }

  write(chunk: string | Uint8Array): void {
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
    this.utf8.flush();
    this.masker.flush();
  }
}

/** Secrets to mask for a job: masked variable values and the job token. */
export function secretsOf(job: { token: string; variables: ReadonlyArray<{ value: string; masked?: boolean }> }): string[] {
  return [job.token, ...job.variables.filter((v) => v.masked).map((v) => v.value)];
}
