import { describe, expect, it } from 'vitest';
import { buildFeatures, KNOWN_FEATURES } from '../../../src/gitlab/features.js';
import { buildRunnerInfo, buildUserAgent, goArch, registrationInfo } from '../../../src/gitlab/info.js';
import { redact } from '../../../src/gitlab/redact.js';

describe('features', () => {
  it('always advertises the network features and lists every known feature', () => {
    const f = buildFeatures([]);
    expect(Object.keys(f).sort()).toEqual([...KNOWN_FEATURES].sort());
    for (const name of ['trace_reset', 'trace_checksum', 'trace_size', 'cancelable', 'cancel_gracefully'] as const) expect(f[name]).toBe(true);
    expect(f.two_phase_job_commit).toBe(false);
    expect(f.job_inputs).toBe(false);
    expect(f.artifacts).toBe(false);
  });

  it('merges the executor features and opt-in network features', () => {
    const f = buildFeatures(['artifacts', 'return_exit_code', 'image'], { twoPhaseJobCommit: true });
    expect(f.artifacts && f.return_exit_code && f.image && f.two_phase_job_commit && f.cancelable).toBe(true);
    expect(f.services).toBe(false);
  });
});

describe('info', () => {
  it('has gitlab-runner fields with GOARCH names', () => {
    const info = buildRunnerInfo({
      version: '0.1.0',
      revision: 'abc123',
      platform: 'linux',
      arch: 'x64',
      executor: 'docker',
      shell: 'bash',
      features: buildFeatures(['image']),
    });
    expect(info).toMatchObject({
      name: 'fleetrunner',
      version: '0.1.0',
      revision: 'abc123',
      platform: 'linux',
      architecture: 'amd64',
      executor: 'docker',
      shell: 'bash',
      config: {},
      labels: {},
    });
    expect(info.features.image).toBe(true);
    expect(goArch('arm64')).toBe('arm64');
  });

  it('registers with no executor context and network features only', () => {
    const full = buildRunnerInfo({ version: '1', platform: 'linux', arch: 'arm64', executor: 'docker', features: buildFeatures(['image']) });
    const reg = registrationInfo(full, buildFeatures([]));
    expect(reg.executor).toBeUndefined();
    expect(reg.features.image).toBe(false);
    expect(reg.features.cancelable).toBe(true);
  });

  it('builds a gitlab-runner-shaped User-Agent', () => {
    expect(buildUserAgent({ version: '0.1.0', branch: 'main', nodeVersion: 'v20.15.0', platform: 'linux', arch: 'x64' })).toBe(
      'fleetrunner 0.1.0 (main; node v20.15.0; linux/amd64)',
    );
  });
});

describe('redact', () => {
  it('masks GitLab-shaped tokens and the tokens we hold', () => {
    const text = 'bad glpat-AbC_123.x and glrt-t2_Zz9 and job token jwt.abc.def12345 and glcbt-64_xyz';
    expect(redact(text, ['jwt.abc.def12345'])).toBe('bad [MASKED] and [MASKED] and job token [MASKED] and [MASKED]');
    expect(redact('global-config needs glibc-2.31', [])).toBe('global-config needs glibc-2.31');
  });
});
