// Fault injection: queues of answers the fake gives instead of its normal behaviour. Each entry is used
// once. Job-level entries may be scoped to one job; unscoped ones apply to whichever job comes first.
import type { FaultSpec, JobRequestFault } from './types.js';

interface Scoped<T> {
  value: T;
  jobId?: number;
}

class ScopedQueue<T> {
  private readonly items: Array<Scoped<T>> = [];

  push(values: readonly T[] | undefined, jobId: number | undefined): void {
    for (const value of values ?? []) this.items.push(jobId === undefined ? { value } : { value, jobId });
  }

  /** Takes the first entry for this job (or unscoped) that `accept` agrees to. */
  take(jobId: number, accept: (v: T) => boolean = () => true): T | undefined {
    const i = this.items.findIndex((e) => (e.jobId === undefined || e.jobId === jobId) && accept(e.value));
    if (i < 0) return undefined;
    return this.items.splice(i, 1)[0]?.value;
  }

  get size(): number {
    return this.items.length;
  }
}

export class Faults {
  private readonly jobRequest: JobRequestFault[] = [];
  readonly tracePatch = new ScopedQueue<number>();
  readonly trace416 = new ScopedQueue<number>();
  readonly finalPut = new ScopedQueue<number>(); // 202 entries come from finalPut202
  readonly artifactUpload = new ScopedQueue<number>();
  readonly artifactDownload = new ScopedQueue<number>();
  traceUpdateIntervalS: number;
  /** While set: every /api/v4/jobs* call gets this status, as from a load balancer in front of a GitLab
   *  that is down (an upgrade, an incident), until `untilMs` (fake clock). */
  outage: { status: number; untilMs: number } | undefined;
  /** Armed by FaultSpec.outageOnFinalPut: the first final PUT starts the outage (and gets its status). */
  outageOnFinalPut: { status: number; durationMs: number } | undefined;
  /** When the last outage ended: a runner cannot be blamed for silence while GitLab was away (check 14). */
  lastOutageEndedAt = 0;

  constructor(traceUpdateIntervalS: number) {
    this.traceUpdateIntervalS = traceUpdateIntervalS;
  }

  inject(spec: FaultSpec): void {
    const job = spec.forJob;
    this.jobRequest.push(...(spec.jobRequest ?? []));
    this.tracePatch.push(spec.tracePatch, job);
    this.trace416.push(spec.trace416AtOffset, job);
    this.finalPut.push(Array.from({ length: spec.finalPut202 ?? 0 }, () => 202), job);
    this.finalPut.push(spec.finalPut, job);
    this.artifactUpload.push(spec.artifactUpload, job);
    this.artifactDownload.push(spec.artifactDownload, job);
    if (spec.traceUpdateIntervalS !== undefined) this.traceUpdateIntervalS = spec.traceUpdateIntervalS;
    if (spec.outageOnFinalPut) this.outageOnFinalPut = { ...spec.outageOnFinalPut };
  }

  /** The outage status for a job call at `now`, if one is in force. */
  outageStatus(now: number): number | undefined {
    if (this.outage && now >= this.outage.untilMs) {
      this.lastOutageEndedAt = this.outage.untilMs;
      this.outage = undefined;
    }
    return this.outage?.status;
  }

  /** The next jobs/request fault that is not a 201 content-type override. */
  takeJobRequestError(): Exclude<JobRequestFault, number> | undefined {
    const i = this.jobRequest.findIndex((f) => normalize(f).status !== 201);
    if (i < 0) return undefined;
    return normalize(this.jobRequest.splice(i, 1)[0]!);
  }

  /** A Content-Type override for the next 201, if one is queued. */
  takeJobRequestContentType(): string | undefined {
    const i = this.jobRequest.findIndex((f) => normalize(f).status === 201);
    if (i < 0) return undefined;
    return normalize(this.jobRequest.splice(i, 1)[0]!).contentType ?? 'text/plain';
  }
}

function normalize(f: JobRequestFault): Exclude<JobRequestFault, number> {
  return typeof f === 'number' ? { status: f } : f;
}
