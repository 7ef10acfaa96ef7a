import { describe, expect, it } from 'vitest';
import { buildPlan, UnsupportedJobError } from '../../../src/jobs/index.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { ctx } from './fixtures.js';

// GitLab 16.1+ passes `cache:policy: $CACHE_POLICY` through unexpanded; the runner expands it.
function planWith(policy: string | null, value?: string | null) {
  const variables = value === undefined ? [] : [{ key: 'CACHE_POLICY', value, public: true, masked: false }];
  const job = jobPayload({
    job_info: { name: 'test', stage: 'test', project_id: 1, project_full_path: 'g/app' },
    git_info: { repo_url: 'https://gitlab.example.com/g/app.git', ref: 'main', sha: 'a'.repeat(40), refspecs: [], depth: 20 },
    variables,
    steps: [{ name: 'script', script: ['true'], timeout: 60, when: 'on_success', allow_failure: false }],
    cache: [{ key: 'deps', untracked: false, paths: ['vendor/'], policy, when: 'on_success', fallback_keys: [] }],
  });
  return buildPlan(job, ctx());
}

const names = (plan: ReturnType<typeof planWith>) => ({
  prepare: plan.prepare.map((s) => s.name).includes('restore_cache'),
  archive: plan.onSuccess.map((s) => s.name).includes('archive_cache'),
});

describe('cache policy', () => {
  it.each([
    ['pull', undefined, { prepare: true, archive: false }],
    ['push', undefined, { prepare: false, archive: true }],
    ['pull-push', undefined, { prepare: true, archive: true }],
    [null, undefined, { prepare: true, archive: true }],
    ['', undefined, { prepare: true, archive: true }],
    ['$CACHE_POLICY', 'pull', { prepare: true, archive: false }],
    ['${CACHE_POLICY}', 'push', { prepare: false, archive: true }],
    ['$CACHE_POLICY', '', { prepare: true, archive: true }],
    ['$CACHE_POLICY', null, { prepare: true, archive: true }],
    ['$CACHE_POLICY', undefined, { prepare: true, archive: true }],
  ] as const)('policy %j with CACHE_POLICY=%j restores/archives as %j', (policy, value, expected) => {
    expect(names(planWith(policy, value))).toEqual(expected);
  });

  it('fails the job naming the value and the variable it came from', () => {
    expect(() => planWith('$CACHE_POLICY', 'pul')).toThrow(UnsupportedJobError);
    expect(() => planWith('$CACHE_POLICY', 'pul')).toThrow('cache[0].policy: unknown cache policy "pul" (from "$CACHE_POLICY"); expected pull, push or pull-push');
    expect(() => planWith('sometimes')).toThrow('cache[0].policy: unknown cache policy "sometimes"; expected pull, push or pull-push');
  });
});
