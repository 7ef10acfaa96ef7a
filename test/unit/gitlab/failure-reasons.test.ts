import { describe, expect, it } from 'vitest';
import type { FailureReason } from '../../../src/core/outcome.js';
import { mapFailureReason } from '../../../src/gitlab/failure-reasons.js';

const MODERN = [
  'unknown_failure',
  'script_failure',
  'api_failure',
  'stuck_or_timeout_failure',
  'runner_system_failure',
  'missing_dependency_failure',
  'runner_unsupported',
  'job_execution_timeout',
  'image_pull_failure',
  'runner_configuration_error',
  'runner_external_dependency_failure',
];

describe('mapFailureReason', () => {
  it.each<[FailureReason | '', readonly string[] | undefined, string]>([
    // always accepted, listed or not
    ['script_failure', [], 'script_failure'],
    ['runner_system_failure', undefined, 'runner_system_failure'],
    ['job_execution_timeout', [], 'job_execution_timeout'],
    // listed → as is
    ['image_pull_failure', MODERN, 'image_pull_failure'],
    ['runner_configuration_error', MODERN, 'runner_configuration_error'],
    ['runner_external_dependency_failure', MODERN, 'runner_external_dependency_failure'],
    ['unknown_failure', MODERN, 'unknown_failure'],
    // not listed → fallback (docs/gitlab-protocol.md §3.4)
    ['image_pull_failure', [], 'runner_system_failure'],
    ['runner_configuration_error', [], 'script_failure'],
    ['runner_external_dependency_failure', undefined, 'runner_system_failure'],
    ['runner_interrupted', MODERN, 'unknown_failure'],
    ['job_canceled', MODERN, 'unknown_failure'],
    ['unknown_failure', [], 'unknown_failure'],
    // listed by a newer GitLab → as is
    ['runner_interrupted', [...MODERN, 'runner_interrupted'], 'runner_interrupted'],
    // empty → script failure
    ['', MODERN, 'script_failure'],
  ])('%s with %j → %s', (reason, supported, expected) => {
    expect(mapFailureReason(reason, supported)).toBe(expected);
  });
});
