// What every route handler gets: shared state, options and the recorders. Built once by FakeGitLab.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { CiState } from './ci-state.js';
import type { Faults } from './faults.js';
import type { RunnerRegistry } from './runner-registry.js';
import type { Violations } from './violations.js';

export interface ResolvedOptions {
  longPollMs: number;
  checkIntervalMs: number;
  keepAliveMs: number;
  twoPhaseCommit: boolean;
  directDownloadRedirect: boolean;
  defaultGitDepth: number;
  defaultTimeoutS: number;
  outputLimitBytes?: number;
  maxArtifactBytes: number;
}

export interface FakeContext {
  readonly clock: { now(): number };
  readonly logger: Logger;
  readonly opts: ResolvedOptions;
  readonly runners: RunnerRegistry;
  readonly ci: CiState;
  readonly faults: Faults;
  readonly violations: Violations;
  /** Root of the bare repositories (GIT_PROJECT_ROOT). */
  reposDir(): string;
  /** `http://127.0.0.1:PORT`, known once listening. */
  baseUrl(): string;
  /** Long-poll waiters woken when a runner queue value changes. */
  readonly queueWaiters: Set<(force: boolean) => void>;
  /** Keys of the "object storage" URLs handed out by direct_download redirects. */
  readonly objectStore: Map<string, { jobId: number; type: string }>;
}

export type RouteHandler = (
  ctx: FakeContext,
  req: IncomingMessage,
  res: ServerResponse,
  params: string[],
  url: URL,
) => Promise<void>;

export interface Route {
  method: string;
  pattern: RegExp;
  handler: RouteHandler;
}
