// The strict fake GitLab used by fleetrunner's tests and by `fleetrunner demo`. It speaks the runner API
// as docs/gitlab-protocol.md describes GitLab (not as any client behaves) and records every deviation of the
// runner in `violations` (messages start with the number of the check in that document's §8).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { artifactRoutes } from './artifacts.js';
import { CiState } from './ci-state.js';
import type { FakeContext, ResolvedOptions } from './context.js';
import { Faults } from './faults.js';
import { gitRoutes } from './git-http.js';
import { jobRequestRoutes } from './job-request.js';
import { jobUpdateRoutes } from './job-update.js';
import * as projects from './projects.js';
import type { ProjectRecord } from './records.js';
import { RunnerRegistry } from './runner-registry.js';
import { runnerRoutes } from './runner-routes.js';
import { FakeServer } from './server.js';
import { traceRoutes } from './trace-route.js';
import { TERMINAL_STATES } from './types.js';
import type {
  AddRunnerOptions,
  FakeGitLabOptions,
  FaultSpec,
  FileContent,
  JobSpec,
  JobState,
  JobView,
  PipelineInfo,
  PipelineOptions,
  PipelineView,
  ProjectInfo,
  RequestLogEntry,
  RunnerInfo,
} from './types.js';
import { Violations } from './violations.js';

export * from './types.js';
export type * from './rails-payload.js';
export { traceChecksum } from './job-update.js';

type ProjectRef = ProjectInfo | string | number;

export class FakeGitLab {
  private readonly clock: { now(): number };
  private readonly logger: Logger;
  private readonly recorder: Violations;
  private readonly runners: RunnerRegistry;
  private readonly ci: CiState;
  private readonly faults: Faults;
  private readonly opts: ResolvedOptions;
  private readonly queueWaiters = new Set<(force: boolean) => void>();
  private readonly server: FakeServer;
  private dataDir?: string;
  private ownsDataDir = false;
  private baseUrl?: string;

  constructor(private readonly options: FakeGitLabOptions = {}) {
    this.clock = options.clock ?? { now: () => Date.now() };
    this.logger = options.logger ?? silentLogger;
    this.recorder = new Violations(this.logger);
    this.runners = new RunnerRegistry(this.clock, this.recorder, options.registrationToken);
    this.faults = new Faults(options.traceUpdateIntervalS ?? 3);
    this.ci = new CiState(this.clock, () => {
      this.runners.tickAll();
      for (const wake of [...this.queueWaiters]) wake(false);
    });
    this.opts = {
      longPollMs: options.longPollMs ?? 0,
      checkIntervalMs: options.checkIntervalMs ?? 3000,
      keepAliveMs: options.keepAliveMs ?? 30_000,
      twoPhaseCommit: options.twoPhaseCommit ?? false,
      directDownloadRedirect: options.directDownloadRedirect ?? false,
      defaultGitDepth: options.defaultGitDepth ?? 20,
      defaultTimeoutS: options.defaultTimeoutS ?? 3600,
      maxArtifactBytes: options.maxArtifactBytes ?? 100 * 1024 * 1024,
      ...(options.outputLimitBytes === undefined ? {} : { outputLimitBytes: options.outputLimitBytes }),
    };
    const ctx: FakeContext = {
      clock: this.clock,
      logger: this.logger,
      opts: this.opts,
      runners: this.runners,
      ci: this.ci,
      faults: this.faults,
      violations: this.recorder,
      reposDir: () => this.reposDir(),
      baseUrl: () => this.url,
      queueWaiters: this.queueWaiters,
      objectStore: new Map(),
    };
    this.server = new FakeServer(ctx, [
      ...runnerRoutes,
      ...jobRequestRoutes,
      ...jobUpdateRoutes,
      ...traceRoutes,
      ...artifactRoutes,
      ...gitRoutes,
    ]);
  }

  /** Listens on 127.0.0.1 (random port by default). */
  async start(port = 0): Promise<void> {
    if (this.baseUrl) throw new Error('fake GitLab already started');
    if (this.options.dataDir) this.dataDir = this.options.dataDir;
    else {
      this.dataDir = await mkdtemp(join(tmpdir(), 'fakegitlab-'));
      this.ownsDataDir = true;
    }
    const actual = await this.server.listen(port, '127.0.0.1');
    this.baseUrl = `http://127.0.0.1:${actual}`;
  }

  async stop(): Promise<void> {
    for (const wake of [...this.queueWaiters]) wake(true);
    await this.server.close();
    this.baseUrl = undefined;
    if (this.ownsDataDir && this.dataDir) await rm(this.dataDir, { recursive: true, force: true });
  }

  get url(): string {
    if (!this.baseUrl) throw new Error('fake GitLab not started');
    return this.baseUrl;
  }

  get registrationToken(): string {
    return this.runners.registrationToken;
  }

  /** Strictness failures; runner tests assert this is empty. */
  get violations(): string[] {
    return this.recorder.list;
  }

  /** Soft checks (5, 13): timing heuristics worth reading, not failing on. */
  get warnings(): string[] {
    return this.recorder.warnings;
  }

  /** Returns the violations so far and forgets them (for tests that provoke some on purpose). */
  takeViolations(): string[] {
    const out = [...this.recorder.list];
    this.recorder.clear();
    return out;
  }

  get requests(): RequestLogEntry[] {
    return this.server.requests;
  }

  /** Peak number of jobs running or canceling at once. */
  get maxConcurrentRunning(): number {
    return this.ci.maxConcurrentRunning;
  }

  addRunner(opts: AddRunnerOptions = {}): RunnerInfo {
    return this.runnerInfo(this.runners.add(opts).id);
  }

  runner(id: number): RunnerInfo & { managers: Array<{ systemId: string; features: Record<string, unknown> }> } {
    const r = this.runners.byId(id);
    if (!r) throw new Error(`no runner ${id}`);
    return {
      ...this.runnerInfo(id),
      managers: [...r.managers.values()].map((m) => ({ systemId: m.systemId, features: { ...m.features } })),
    };
  }

  setRunnerPaused(id: number, paused: boolean): void {
    const r = this.runners.byId(id);
    if (!r) throw new Error(`no runner ${id}`);
    r.paused = paused;
    this.runners.tickAll();
    for (const wake of [...this.queueWaiters]) wake(false);
  }

  private runnerInfo(id: number): RunnerInfo {
    const r = this.runners.byId(id)!;
    return { id: r.id, token: r.token, paused: r.paused, ...(r.tokenExpiresAt === undefined ? {} : { tokenExpiresAt: r.tokenExpiresAt }) };
  }

  /** A bare repository `<path>.git` with one commit of `files`, served over smart HTTP. `description` becomes
   *  CI_PROJECT_DESCRIPTION (without one Rails sends `null`). */
  async createProject(spec: { path: string; files: Record<string, FileContent>; branch?: string; description?: string }): Promise<ProjectInfo> {
    const { project, sha } = await projects.createProject(this.ci, this.reposDir(), spec);
    const { id, path, name, defaultBranch } = project;
    return { id, path, name, defaultBranch, sha, httpUrl: `${this.url}/${path}.git` };
  }

  /** Commits on top of `branch` (default: the default branch); returns the new SHA. */
  addCommit(ref: ProjectRef, files: Record<string, FileContent>, opts: { branch?: string; message?: string } = {}): Promise<string> {
    return projects.addCommit(this.project(ref), files, opts);
  }

  /** A lightweight tag at `sha` (default: head of the default branch). */
  addTag(ref: ProjectRef, name: string, sha?: string): Promise<string> {
    return projects.addTag(this.project(ref), name, sha);
  }

  /** Creates a pipeline at the head of `opts.ref`; jobs of the first stage become pending at once. */
  async createPipeline(ref: ProjectRef, jobs: JobSpec[], opts: PipelineOptions = {}): Promise<PipelineInfo> {
    const p = await projects.createPipeline(this.ci, this.clock.now(), this.project(ref), jobs, opts);
    return { id: p.id, projectId: p.projectId, ref: p.ref, sha: p.sha, jobIds: [...p.jobIds] };
  }

  job(id: number): JobView {
    const j = this.ci.jobs.get(id);
    if (!j) throw new Error(`no job ${id}`);
    return this.ci.jobView(j);
  }

  jobsOf(pipeline: PipelineInfo | number): JobView[] {
    return this.pipelineRecord(pipeline).jobIds.map((id) => this.job(id));
  }

  pipeline(pipeline: PipelineInfo | number): PipelineView {
    const p = this.pipelineRecord(pipeline);
    return { id: p.id, status: this.ci.pipelineStatus(p), jobs: this.jobsOf(p.id) };
  }

  /** `canceling` if the runner advertised cancel_gracefully when it took the job, else `canceled`. */
  cancelJob(id: number): void {
    const j = this.ci.jobs.get(id);
    if (!j) throw new Error(`no job ${id}`);
    this.ci.cancel(j);
  }

  /** Fails a job server-side (the runner then sees Job-Status: failed / 403). */
  dropJob(id: number, failureReason = 'api_failure'): void {
    const j = this.ci.jobs.get(id);
    if (!j) throw new Error(`no job ${id}`);
    if (!TERMINAL_STATES.includes(j.state)) this.ci.transition(j, 'failed', { failureReason });
  }

  injectFaults(spec: FaultSpec): void {
    this.faults.inject(spec);
  }

  waitForJobState(id: number, states: JobState[], timeoutMs = 15_000): Promise<JobView> {
    return this.waitFor(
      () => {
        const j = this.ci.jobs.get(id);
        return j && states.includes(j.state) ? this.ci.jobView(j) : undefined;
      },
      timeoutMs,
      () => `job ${id} is ${this.ci.jobs.get(id)?.state ?? 'unknown'}, waited for ${states.join('|')}`,
    );
  }

  /** Resolves when every job of the pipeline has ended. */
  waitForPipeline(pipeline: PipelineInfo | number, timeoutMs = 30_000): Promise<PipelineView> {
    const p = this.pipelineRecord(pipeline);
    return this.waitFor(
      () => {
        const done = p.jobIds.every((id) => TERMINAL_STATES.includes(this.ci.jobs.get(id)!.state));
        return done ? this.pipeline(p.id) : undefined;
      },
      timeoutMs,
      () => `pipeline ${p.id}: ${p.jobIds.map((id) => `${id}=${this.ci.jobs.get(id)!.state}`).join(', ')}`,
    );
  }

  private waitFor<T>(probe: () => T | undefined, timeoutMs: number, describe: () => string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const v = probe();
        if (v === undefined) return;
        cleanup();
        resolve(v);
      };
      const timer = setTimeout(() => {
        cleanup();
        const v = this.recorder.list;
        reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}${v.length ? `\nviolations:\n${v.join('\n')}` : ''}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.ci.events.off('change', check);
      };
      this.ci.events.on('change', check);
      check();
    });
  }

  private reposDir(): string {
    if (!this.dataDir) throw new Error('fake GitLab not started: start() before creating projects');
    return join(this.dataDir, 'repos');
  }

  private project(ref: ProjectRef): ProjectRecord {
    const p =
      typeof ref === 'number'
        ? this.ci.projects.get(ref)
        : this.ci.projectByPath(typeof ref === 'string' ? ref : ref.path);
    if (!p) throw new Error(`no project ${typeof ref === 'object' ? ref.path : ref}`);
    return p;
  }

  private pipelineRecord(pipeline: PipelineInfo | number) {
    const id = typeof pipeline === 'number' ? pipeline : pipeline.id;
    const p = this.ci.pipelines.get(id);
    if (!p) throw new Error(`no pipeline ${id}`);
    return p;
  }
}
