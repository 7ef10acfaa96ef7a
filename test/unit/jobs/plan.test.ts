import { describe, expect, it } from 'vitest';
import type { JobPlan, Stage } from '../../../src/core/index.js';
import { buildPlan, PLAN_FEATURES, UnsupportedJobError } from '../../../src/jobs/index.js';
import { jobArtifact, jobCache, jobStep } from '../../helpers/job-payload.js';
import { body, ctx, job, TOKEN } from './fixtures.js';

function allStages(plan: JobPlan): Stage[] {
  const after = plan.after ? (['success', 'failed', 'canceled', 'timedout'] as const).map((s) => plan.after!(s)) : [];
  return [...plan.prepare, ...plan.user, ...after, ...plan.onSuccess, ...plan.onFailure, plan.cleanup];
}

const full = job({
  cache: [
    jobCache({ key: 'c-success', paths: ['a'], when: 'on_success', policy: 'pull-push' }),
    jobCache({ key: 'c-failure', paths: ['b'], when: 'on_failure', policy: 'pull-push' }),
    jobCache({ key: 'c-pull', paths: ['c'], when: 'always', policy: 'pull' }),
  ],
  artifacts: [
    jobArtifact({ name: 'ok', paths: ['dist'], when: 'on_success', artifact_type: 'archive', artifact_format: 'zip' }),
    jobArtifact({ name: 'bad', paths: ['logs'], when: 'on_failure', artifact_type: 'archive', artifact_format: 'zip' }),
    jobArtifact({ name: 'junit.xml', paths: ['junit.xml'], when: 'always', artifact_type: 'junit', artifact_format: 'gzip' }),
    jobArtifact({ name: 'empty', paths: [], when: 'always', artifact_type: 'archive', artifact_format: 'zip' }),
  ],
  dependencies: [{ id: 1, name: 'build', token: TOKEN, artifacts_file: { filename: 'artifacts.zip', size: 3 } }],
  steps: [
    jobStep({ name: 'script', script: ['make'] }),
    jobStep({ name: 'after_script', script: ['echo after'] }),
    jobStep({ name: 'release', script: ['release-cli create'] }),
  ],
  hooks: [{ name: 'pre_get_sources_script', script: ['echo pre'] }],
});

describe('buildPlan', () => {
  it('names the stages as GitLab does, in its order', () => {
    const plan = buildPlan(full, ctx());
    expect(plan.prepare.map((s) => s.name)).toEqual(['prepare_script', 'get_sources', 'restore_cache', 'download_artifacts']);
    expect(plan.prepare.every((s) => s.phase === 'predefined')).toBe(true);
    expect(plan.user.map((s) => [s.name, s.phase])).toEqual([
      ['step_script', 'user'],
      ['step_release', 'user'],
    ]);
    expect(plan.after?.('success')).toMatchObject({ name: 'after_script', phase: 'after' });
    expect(plan.cleanup.name).toBe('cleanup_file_variables');
    expect(plan.projectDir).toBe('/home/fr/builds/group/sub/app');
  });

  it('renders each stage\'s script when it is asked for, the same every time (a running job keeps no copy)', () => {
    const plan = buildPlan(full, ctx());
    for (const s of allStages(plan)) {
      expect(Object.getOwnPropertyDescriptor(s, 'script')?.get).toBeTypeOf('function');
      expect(s.script).toBe(s.script);
      expect({ ...s }.script).toBe(s.script);
    }
  });

  it('selects cache and artifact work by `when` and policy', () => {
    const plan = buildPlan(full, ctx());
    expect(plan.onSuccess.map((s) => s.name)).toEqual(['archive_cache', 'upload_artifacts_on_success']);
    expect(plan.onFailure.map((s) => s.name)).toEqual(['archive_cache_on_failure', 'upload_artifacts_on_failure']);
    const ok = body(plan.onSuccess[1]!.script);
    const bad = body(plan.onFailure[1]!.script);
    expect(ok).toContain('filename="ok.zip"');
    expect(ok).toContain('junit.xml.gz');
    expect(ok).not.toContain('bad.zip');
    expect(bad).toContain('bad.zip');
    expect(bad).toContain('junit.xml.gz');
    expect(bad).not.toContain('ok.zip');
    expect(ok + bad).not.toContain('empty.zip');
    const archiveOk = body(plan.onSuccess[0]!.script);
    expect(archiveOk).toContain('Creating cache c-success...');
    expect(archiveOk).not.toContain('Creating cache c-failure');
    expect(archiveOk).toContain('Not uploading cache c-pull due to policy');
    expect(body(plan.onFailure[0]!.script)).toContain('Creating cache c-failure...');
  });

  it('omits stages with nothing to do', () => {
    const plan = buildPlan(job({ steps: [jobStep({ name: 'script', script: ['true'] })] }), ctx());
    expect(plan.prepare.map((s) => s.name)).toEqual(['prepare_script', 'get_sources']);
    expect(plan.onSuccess).toEqual([]);
    expect(plan.onFailure).toEqual([]);
    expect(plan.after).toBeUndefined();
  });

  it('after_script gets CI_JOB_STATUS and its timeout', () => {
    const plan = buildPlan(job(), ctx());
    for (const status of ['success', 'failed', 'canceled', 'timedout'] as const) {
      expect(body(plan.after!(status).script)).toContain(`export CI_JOB_STATUS=${status}\n`);
    }
    expect(body(plan.user[0]!.script)).toContain('export CI_JOB_STATUS=running\n');
    expect(plan.afterScriptTimeoutMs).toBe(300_000);
    expect(buildPlan(job(), ctx({ afterScriptTimeoutMs: 60_000 })).afterScriptTimeoutMs).toBe(60_000);
    const custom = job({ variables: [{ key: 'RUNNER_AFTER_SCRIPT_TIMEOUT', value: '1h30m' }] });
    expect(buildPlan(custom, ctx({ afterScriptTimeoutMs: 60_000 })).afterScriptTimeoutMs).toBe(5_400_000);
  });

  it('ignores after_script errors unless AFTER_SCRIPT_IGNORE_ERRORS=false', () => {
    expect(buildPlan(job(), ctx()).after!('failed').script).toMatch(/\nexit 0\n$/);
    const strict = job({ variables: [{ key: 'AFTER_SCRIPT_IGNORE_ERRORS', value: 'false' }] });
    expect(buildPlan(strict, ctx()).after!('failed').script).toMatch(/\nexit "\$\?"\n$/);
  });

  it('takes the job timeout from runner_info (0 → 7200 s) and RUNNER_SCRIPT_TIMEOUT', () => {
    expect(buildPlan(job(), ctx()).jobTimeoutMs).toBe(3_600_000);
    expect(buildPlan(job({ runner_info: { timeout: 0 } }), ctx()).jobTimeoutMs).toBe(7_200_000);
    expect(buildPlan(job({ runner_info: {} }), ctx()).jobTimeoutMs).toBe(7_200_000);
    expect(buildPlan(job(), ctx()).scriptTimeoutMs).toBeUndefined();
    const timed = job({ variables: [{ key: 'RUNNER_SCRIPT_TIMEOUT', value: '10m' }] });
    expect(buildPlan(timed, ctx()).scriptTimeoutMs).toBe(600_000);
  });

  it('turns on xtrace with CI_DEBUG_TRACE=true', () => {
    const plan = buildPlan(job({ variables: [{ key: 'CI_DEBUG_TRACE', value: 'true' }] }), ctx());
    expect(body(plan.user[0]!.script)).toContain('set -o xtrace\n');
    expect(body(buildPlan(job(), ctx()).user[0]!.script)).not.toContain('xtrace');
  });

  it('echoes user commands green and collapses multi-line ones', () => {
    const plan = buildPlan(job({ steps: [jobStep({ name: 'script', script: ['make all', 'for i in 1 2; do\n  echo $i\ndone'] })] }), ctx());
    const b = body(plan.user[0]!.script);
    expect(b).toContain("printf '\\033[32;1m%s\\033[0;m\\n' '$ make all'\nmake all\n");
    expect(b).toContain("'$ for i in 1 2; do # collapsed multi-line command'\nfor i in 1 2; do\n  echo $i\ndone\n");
  });

  it('never puts a token on a command line: only in export lines and printf-builtin file writes', () => {
    const plan = buildPlan(full, ctx());
    for (const stage of allStages(plan)) {
      const b = body(stage.script);
      // outside the eval'd body (a builtin's argument) the token never appears
      expect(stage.script.replace(stage.script.split('\neval ')[1] ?? '', '')).not.toContain(TOKEN);
      for (const line of b.split('\n')) {
        if (!line.includes(TOKEN)) continue;
        expect(line, `${stage.name}: ${line}`).toMatch(/^(export [A-Z_]+=|\(umask 077 && printf %s )/);
      }
    }
    const sources = body(plan.prepare[1]!.script);
    expect(sources).toContain('git remote add origin https://gitlab.example.com/group/sub/app.git');
    expect(sources).toContain('export GIT_CONFIG_VALUE_0=/home/fr/builds/group/sub/app.tmp/git-credentials.conf');
  });

  it('refuses `run:` steps and other unsupported payloads with UnsupportedJobError', () => {
    expect(() => buildPlan(job({ run: '[{"name":"x","script":"echo"}]', steps: [] }), ctx())).toThrow(UnsupportedJobError);
    expect(() => buildPlan(job({ run: '[]' }), ctx())).toThrow(/run:/);
    const sub = job({ variables: [{ key: 'GIT_SUBMODULE_STRATEGY', value: 'sometimes' }] });
    expect(() => buildPlan(sub, ctx())).toThrow(UnsupportedJobError);
    const fmt = job({ artifacts: [jobArtifact({ paths: ['x'], artifact_format: 'tarzstd' })] });
    expect(() => buildPlan(fmt, ctx())).toThrow(UnsupportedJobError);
    const nul = job({ variables: [{ key: 'BAD', value: 'a\0b' }] });
    expect(() => buildPlan(nul, ctx())).toThrow(UnsupportedJobError);
  });

  it('skips variables bash cannot export', () => {
    const plan = buildPlan(job({ variables: [{ key: '1BAD', value: 'x' }, { key: 'UID', value: '0' }, { key: 'OK', value: 'y' }] }), ctx());
    const b = body(plan.user[0]!.script);
    expect(b).toContain('export OK=y\n');
    expect(b).not.toContain('1BAD');
    expect(b).not.toContain('export UID=');
  });

  it('lists the features it implements', () => {
    expect(PLAN_FEATURES).toEqual(
      expect.arrayContaining(['artifacts', 'cache', 'refspecs', 'fallback_cache_keys', 'multi_build_steps', 'raw_variables']),
    );
    expect(PLAN_FEATURES).not.toContain('vault_secrets');
  });
});
