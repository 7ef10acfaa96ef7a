// Where strictness checks report. Messages name the check (docs/gitlab-protocol.md §8), the job and what was expected, so a
// failing runner test explains itself. Identical messages are kept once (a runner repeats its mistakes
// on every poll).
import type { Logger } from '../core/logger.js';

export class Violations {
  readonly list: string[] = [];
  /** Soft checks (timing heuristics such as check 5 and 13): reported, never meant to fail a test. */
  readonly warnings: string[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly logger: Logger) {}

  add(check: number | string, message: string): void {
    const text = `[check ${check}] ${message}`;
    if (this.seen.has(text)) return;
    this.seen.add(text);
    this.list.push(text);
    this.logger.warn({ check }, `fake GitLab violation: ${text}`);
  }

  warn(check: number | string, message: string): void {
    const text = `[check ${check}] ${message}`;
    if (this.seen.has(text)) return;
    this.seen.add(text);
    this.warnings.push(text);
    this.logger.debug({ check }, `fake GitLab warning: ${text}`);
  }

  clear(): void {
    this.list.length = 0;
    this.warnings.length = 0;
    this.seen.clear();
  }
}
