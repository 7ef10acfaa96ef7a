// Projects, pipelines and jobs, and the job state machine: stage ordering, FIFO queue, cancellation and
// the peak number of jobs running at once. Synchronous; HTTP routes and git plumbing sit around it.
import { TraceStore } from './trace-store.js';
import { EventEmitter } from 'node:events';
import type { JobRecord, PipelineRecord, ProjectRecord } from './records.js';
import { randomToken } from './http-util.js';
import { TERMINAL_STATES } from './types.js';
import type { JobSpec, JobState, JobView, PipelineView } from './types.js';
import { specError } from './payload.js';
import { maskedValueError } from './variables.js';

const ACTIVE: readonly JobState[] = ['running', 'canceling'];

export class CiState {
  readonly projects = new Map<number, ProjectRecord>();
  readonly pipelines = new Map<number, PipelineRecord>();
  readonly jobs = new Map<number, JobRecord>();
  readonly events = new EventEmitter();
  maxConcurrentRunning = 0;
  private nextProjectId = 1;
  private nextPipelineId = 1;
  private nextJobId = 1;

  constructor(
    private readonly clock: { now(): number },
    /** Called when jobs become pending (Rails ticks the runner queues). */
    private readonly onEnqueue: () => void,
  ) {
    this.events.setMaxListeners(0);
  }

  newProjectId(): number {
    return this.nextProjectId++;
  }

  newPipelineId(): number {
    return this.nextPipelineId++;
  }

  projectByPath(path: string): ProjectRecord | undefined {
    return [...this.projects.values()].find((p) => p.path === path);
  }

  /** Validates the specs like pipeline creation would, then creates the jobs; the first stage is enqueued. */
  addPipeline(pipeline: Omit<PipelineRecord, 'jobIds' | 'stages'>, specs: JobSpec[], stageOrder?: string[]): PipelineRecord {
    if (specs.length === 0) throw new Error('a pipeline needs at least one job');
    const stages = stageOrder ? [...stageOrder] : [];
    for (const s of specs) {
      const stage = s.stage ?? 'test';
      if (!stages.includes(stage)) {
        if (stageOrder) throw new Error(`job ${s.name}: stage "${stage}" is not in stages`);
        stages.push(stage);
      }
    }
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw new Error(`duplicate job name ${s.name}`);
      names.add(s.name);
      const invalid = specError(s);
      if (invalid) throw new Error(`job ${s.name}: ${invalid}`);
      for (const [key, v] of Object.entries(s.variables ?? {})) {
        const err = typeof v === 'string' ? undefined : maskedValueError(key, v);
        if (err) throw new Error(`job ${s.name}: ${err}`);
      }
    }
    const record: PipelineRecord = { ...pipeline, stages, jobIds: [] };
    const created: JobRecord[] = [];
    for (const spec of specs) {
      const stageIndex = stages.indexOf(spec.stage ?? 'test');
      const job = this.newJob(record, spec, stageIndex);
      const earlier = created.filter((j) => j.stageIndex < stageIndex);
      if (spec.dependencies) {
        for (const name of spec.dependencies) {
          const dep = earlier.find((j) => j.name === name);
          if (!dep) throw new Error(`job ${spec.name}: dependency ${name} is not a job of an earlier stage`);
          job.dependencyIds.push(dep.id);
        }
      } else {
        job.dependencyIds.push(...earlier.map((j) => j.id));
      }
      created.push(job);
    }
    this.pipelines.set(record.id, record);
    for (const j of created) {
      this.jobs.set(j.id, j);
      record.jobIds.push(j.id);
    }
    this.advance(record);
    return record;
  }

  private newJob(pipeline: PipelineRecord, spec: JobSpec, stageIndex: number): JobRecord {
    return {
      id: this.nextJobId++,
      name: spec.name,
      stage: spec.stage ?? 'test',
      stageIndex,
      pipelineId: pipeline.id,
      projectId: pipeline.projectId,
      spec,
      token: `glcbt-${randomToken(20)}`,
      dependencyIds: [],
      state: 'created',
      features: {},
      cancelGracefully: false,
      awaitingAck: false,
      servedNonJson: false,
      acked: false,
      traceStore: new TraceStore(),
      get trace(): Buffer {
        return this.traceStore.bytes;
      },
      set trace(bytes: Buffer) {
        this.traceStore.reset(bytes);
      },
      debugTrace: false,
      expectedNextOffset: 0,
      intervalS: 0,
      patchesAfterAbort: 0,
      putsAfterAbort: 0,
      secretsReported: new Set(),
      downloads: new Map(),
      uploadAttempts: new Map(),
      updates: [],
      patches: [],
      artifacts: [],
    };
  }

  /** Pending jobs nobody has taken, oldest first. */
  queue(): JobRecord[] {
    return [...this.jobs.values()]
      .filter((j) => j.state === 'pending' && !j.awaitingAck)
      .sort((a, b) => (a.queuedAt ?? 0) - (b.queuedAt ?? 0) || a.id - b.id);
  }

  jobByToken(token: string): JobRecord | undefined {
    return [...this.jobs.values()].find((j) => j.token === token);
  }

  isActive(job: JobRecord): boolean {
    return ACTIVE.includes(job.state);
  }

  transition(job: JobRecord, state: JobState, extra: { failureReason?: string; exitCode?: number } = {}): void {
    if (job.state === state) return;
    job.state = state;
    const now = this.clock.now();
    if (ACTIVE.includes(state) && job.startedAt === undefined) job.startedAt = now;
    if (TERMINAL_STATES.includes(state)) {
      job.finishedAt = now;
      job.awaitingAck = false;
      if (extra.failureReason !== undefined) job.failureReason = extra.failureReason;
      if (extra.exitCode !== undefined) job.exitCode = extra.exitCode;
    }
    const running = [...this.jobs.values()].filter((j) => ACTIVE.includes(j.state)).length;
    this.maxConcurrentRunning = Math.max(this.maxConcurrentRunning, running);
    const pipeline = this.pipelines.get(job.pipelineId);
    if (pipeline && TERMINAL_STATES.includes(state)) this.advance(pipeline);
    this.events.emit('change', job);
  }

  /** Graceful `canceling` only when the build stored cancel_gracefully at assignment (docs/gitlab-protocol.md §3.3). */
  cancel(job: JobRecord): void {
    if (TERMINAL_STATES.includes(job.state) || job.state === 'canceling') return;
    if (job.state === 'running' && job.cancelGracefully) this.transition(job, 'canceling');
    else this.transition(job, 'canceled');
  }

  /** Enqueues the next stage once the current one is done; skips the rest after a failure. */
  private advance(p: PipelineRecord): void {
    const jobs = p.jobIds.map((id) => this.jobs.get(id)!);
    for (let stage = 0; stage < p.stages.length; stage++) {
      const inStage = jobs.filter((j) => j.stageIndex === stage);
      if (inStage.every((j) => TERMINAL_STATES.includes(j.state))) {
        if (inStage.some((j) => blocksPipeline(j))) {
          for (const j of jobs.filter((x) => x.state === 'created')) this.transition(j, 'skipped');
          return;
        }
        continue;
      }
      const toEnqueue = inStage.filter((j) => j.state === 'created');
      if (toEnqueue.length === 0) return;
      const now = this.clock.now();
      for (const j of toEnqueue) {
        j.state = 'pending';
        j.queuedAt = now;
        this.events.emit('change', j);
      }
      this.onEnqueue();
      return;
    }
  }

  pipelineStatus(p: PipelineRecord): PipelineView['status'] {
    const jobs = p.jobIds.map((id) => this.jobs.get(id)!);
    if (jobs.some((j) => ACTIVE.includes(j.state))) return 'running';
    if (jobs.some((j) => j.state === 'pending')) return jobs.some((j) => j.startedAt) ? 'running' : 'pending';
    if (jobs.some((j) => j.state === 'created')) return 'created';
    if (jobs.some((j) => blocksPipeline(j) && j.state === 'failed')) return 'failed';
    if (jobs.some((j) => j.state === 'canceled')) return 'canceled';
    return 'success';
  }

  jobView(j: JobRecord): JobView {
    const view: JobView = {
      id: j.id,
      name: j.name,
      stage: j.stage,
      pipelineId: j.pipelineId,
      projectId: j.projectId,
      token: j.token,
      state: j.state,
      trace: Buffer.from(j.trace),
      traceText: j.trace.toString('utf8'),
      updates: j.updates.map((u) => ({ ...u })),
      patches: j.patches.map((p) => ({ ...p })),
      artifacts: j.artifacts.map((a) => ({ ...a, bytes: Buffer.from(a.bytes) })),
    };
    if (j.failureReason !== undefined) view.failureReason = j.failureReason;
    if (j.exitCode !== undefined) view.exitCode = j.exitCode;
    if (j.runnerId !== undefined) view.runnerId = j.runnerId;
    if (j.payload !== undefined) view.payload = structuredClone(j.payload);
    if (j.queuedAt !== undefined) view.queuedAt = j.queuedAt;
    if (j.startedAt !== undefined) view.startedAt = j.startedAt;
    if (j.finishedAt !== undefined) view.finishedAt = j.finishedAt;
    return view;
  }
}

/** A failed job stops the pipeline unless it may fail; a canceled one always does. */
function blocksPipeline(j: JobRecord): boolean {
  if (j.state === 'canceled') return true;
  if (j.state !== 'failed') return false;
  const af = j.spec.allow_failure;
  if (af === true) return false;
  if (typeof af === 'object') return !(j.exitCode !== undefined && af.exit_codes.includes(j.exitCode));
  return true;
}
