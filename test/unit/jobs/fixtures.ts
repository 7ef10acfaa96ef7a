import type { JobPayload } from '../../../src/core/index.js';
import type { PlanContext } from '../../../src/jobs/index.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { testToken } from '../../helpers/tokens.js';

export const TOKEN = testToken('glcbt-64_');

export function ctx(over: Partial<PlanContext> = {}): PlanContext {
  return {
    buildsDir: '/home/fr/builds',
    cacheDir: '/home/fr/cache',
    gitlabUrl: 'https://gitlab.example.com',
    runner: { version: '1.2.3', revision: 'abcdef01', shortToken: 'xYz12345', executorName: 'ec2', concurrentId: 2, platform: 'linux', arch: 'arm64' },
    sharedEnvironment: false,
    ...over,
  };
}

export function job(over: Partial<JobPayload> = {}): JobPayload {
  const base = jobPayload({
    id: 9001,
    token: TOKEN,
    allow_git_fetch: true,
    job_info: { id: 9001, name: 'test', stage: 'test', project_id: 42, project_full_path: 'group/sub/app' },
    git_info: {
      repo_url: `https://gitlab-ci-token:${TOKEN}@gitlab.example.com/group/sub/app.git`,
      ref: 'main',
      sha: '1234567890abcdef1234567890abcdef12345678',
      ref_type: 'branch',
      refspecs: ['+refs/pipelines/5:refs/pipelines/5', '+refs/heads/main:refs/remotes/origin/main'],
      depth: 20,
    },
    runner_info: { timeout: 3600 },
    variables: [
      { key: 'CI_JOB_TOKEN', value: TOKEN, masked: true, public: false },
      { key: 'CI_REGISTRY_PASSWORD', value: TOKEN, masked: true, public: false },
    ],
    steps: [
      { name: 'script', script: ['make test'], when: 'on_success' },
      { name: 'after_script', script: ['echo bye'], when: 'always', allow_failure: true },
    ],
  });
  return { ...base, ...over };
}

/** The body a stage script evals: the single-quoted word after `eval `, read back. */
export function body(script: string): string {
  const marker = '\neval ';
  let i = script.indexOf(marker);
  if (i < 0) throw new Error('no eval line');
  i += marker.length;
  let out = '';
  while (i < script.length) {
    const c = script[i];
    if (c === "'") {
      const end = script.indexOf("'", i + 1);
      out += script.slice(i + 1, end);
      i = end + 1;
    } else if (c === '\\') {
      out += script[i + 1];
      i += 2;
    } else break;
  }
  return out;
}
