// The runner's own lines in the job trace, in gitlab-runner's wording and colours, and the executor's
// own section (prepare_executor). Stage scripts print their own sections (jobs/ writes them).

import type { Clock, JobOutcome, TraceSink } from '../core/index.js';

export const ANSI = {
  boldGreen: '\x1b[32;1m',
  boldRed: '\x1b[31;1m',
  boldCyan: '\x1b[36;1m',
  yellow: '\x1b[0;33m',
  reset: '\x1b[0;m',
  clearLine: '\x1b[0K',
} as const;

/** Writes the runner's lines; also the sink stage output goes through, so it knows where lines end. */
export class TraceWriter implements TraceSink {
  private atLineStart = true;

  constructor(
    readonly sink: TraceSink,
    private readonly clock: Clock,
  ) {}

  write(chunk: string | Uint8Array): void {
    const size = typeof chunk === 'string' ? chunk.length : chunk.byteLength;
    if (size === 0) return;
    const last = typeof chunk === 'string' ? chunk.charCodeAt(size - 1) : chunk[size - 1];
    this.atLineStart = last === 0x0a;
    this.sink.write(chunk);
  }
  flush(): void {
    this.sink.flush();
  }
  addSecrets(values: readonly string[]): void {
    this.sink.addSecrets(values);
  }
  get checkpoints(): TraceSink['checkpoints'] {
    return this.sink.checkpoints;
  }

  line(text: string): void {
    this.put(`${text}\n`);
  }
  notice(text: string): void {
    this.put(`${ANSI.clearLine}${ANSI.boldCyan}${text}${ANSI.reset}\n`);
  }
  warning(text: string): void {
    this.put(`${ANSI.yellow}WARNING: ${text}${ANSI.reset}\n`);
  }
  error(text: string): void {
    this.put(`${ANSI.boldRed}ERROR: ${text}${ANSI.reset}\n`);
  }
  success(text: string): void {
    this.put(`${ANSI.clearLine}${ANSI.boldGreen}${text}${ANSI.reset}\n`);
  }
  sectionStart(name: string, header: string): void {
    this.put(`${ANSI.clearLine}section_start:${this.unix()}:${name}\r${ANSI.clearLine}`);
    this.notice(header);
  }
  sectionEnd(name: string): void {
    this.put(`${ANSI.clearLine}section_end:${this.unix()}:${name}\r${ANSI.clearLine}`);
  }

  /** The last line of every job: "Job succeeded" or "ERROR: Job failed: …". */
  outcome(o: JobOutcome): void {
    if (o.state === 'success') return this.success('Job succeeded');
    const msg = o.message ?? o.reason;
    if (o.reason === 'runner_system_failure') this.error(`Job failed (system failure): ${msg}`);
    else this.error(`Job failed: ${msg}`);
  }

  /** Runner lines always start on a line of their own, even after output without a final newline. */
  private put(text: string): void {
    this.sink.write(this.atLineStart ? text : `\n${text}`);
    // A section marker ends with "\r\e[0K": the next text starts at the beginning of the line.
    this.atLineStart = text.endsWith('\n') || text.endsWith(`\r${ANSI.clearLine}`);
  }

  private unix(): number {
    return Math.floor(this.clock.now() / 1000);
  }
}
