// Builders for normalised job payloads in tests. A whole payload is made by the real boundary
// (parseJobPayload) from a Rails-shaped body, so tests exercise the same defaults production does; the
// small builders fill a single image, step, cache or artifact entry with the boundary's defaults.

import type { JobArtifact, JobCache, JobImage, JobPayload, JobStep } from '../../src/core/index.js';
import { parseJobPayload } from '../../src/gitlab/job-payload.js';

/** Parses `body` (Rails' wire shape: nulls and missing keys allowed) like the coordinator; throws on problems. */
export function jobPayload(body: Record<string, unknown>): JobPayload {
  const r = parseJobPayload({ id: 1, token: 'job-token-placeholder', git_info: {}, ...body });
  if (!r.ok) throw new Error(`test payload does not parse: ${r.problems.join('; ')}`);
  return r.job;
}

export function jobImage(over: Partial<JobImage> & { name: string }): JobImage {
  return { entrypoint: [], command: [], ports: [], variables: [], pull_policy: [], executor_opts: { docker: {} }, ...over };
}

export function jobStep(over: Partial<JobStep> & { name: string; script: string[] }): JobStep {
  return { when: over.name === 'after_script' ? 'always' : 'on_success', allow_failure: over.name === 'after_script', ...over };
}

export function jobCache(over: Partial<JobCache> = {}): JobCache {
  return { key: '', untracked: false, paths: [], policy: '', when: 'on_success', fallback_keys: [], ...over };
}

export function jobArtifact(over: Partial<JobArtifact> = {}): JobArtifact {
  return { untracked: false, paths: [], exclude: [], when: 'on_success', artifact_type: 'archive', artifact_format: 'zip', ...over };
}
