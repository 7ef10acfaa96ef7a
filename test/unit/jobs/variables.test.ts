import { describe, expect, it } from 'vitest';
import { projectDirs } from '../../../src/jobs/dirs.js';
import { collectVariables, debugModeEnabled, resolveVariables, variableSet } from '../../../src/jobs/variables.js';
import { jobImage } from '../../helpers/job-payload.js';
import { ctx, job } from './fixtures.js';

describe('job variables', () => {
  const dirs = projectDirs(job(), ctx());

  it('lists runner variables around the job ones in gitlab-runner order', () => {
    const j = job({ image: jobImage({ name: 'node:20' }), variables: [{ key: 'MINE', value: '1' }] });
    const keys = collectVariables(j, ctx({ environment: { ENV_A: 'a' } }), dirs, 'running').map((v) => v.key);
    expect(keys).toEqual([
      'CI_JOB_IMAGE',
      'CI_RUNNER_SHORT_TOKEN',
      'ENV_A',
      'CI_BUILDS_DIR',
      'CI_PROJECT_DIR',
      'CI_CONCURRENT_ID',
      'CI_CONCURRENT_PROJECT_ID',
      'CI_SERVER',
      'CI_JOB_STATUS',
      'CI_JOB_TIMEOUT',
      'CI_JOB_TOKEN', // added because this payload lacks it
      'MINE',
      'CI_DISPOSABLE_ENVIRONMENT',
      'CI_RUNNER_VERSION',
      'CI_RUNNER_REVISION',
      'CI_RUNNER_EXECUTABLE_ARCH',
      'RUNNER_TEMP_PROJECT_DIR',
    ]);
  });

  it('gives runner values', () => {
    const vars = variableSet(collectVariables(job(), ctx({ sharedEnvironment: true }), dirs, 'failed'));
    expect(vars.get('CI_PROJECT_DIR')).toBe('/home/fr/builds/group/sub/app');
    expect(vars.get('RUNNER_TEMP_PROJECT_DIR')).toBe('/home/fr/builds/group/sub/app.tmp');
    expect(vars.get('CI_JOB_STATUS')).toBe('failed');
    expect(vars.get('CI_JOB_TIMEOUT')).toBe('3600');
    expect(vars.get('CI_SHARED_ENVIRONMENT')).toBe('true');
    expect(vars.get('CI_DISPOSABLE_ENVIRONMENT')).toBeUndefined();
    expect(vars.get('CI_RUNNER_EXECUTABLE_ARCH')).toBe('linux/arm64');
    expect(vars.get('CI_SERVER')).toBe('yes');
  });

  it('job variables override config environment; the last definition wins', () => {
    const j = job({ variables: [{ key: 'X', value: 'job1' }, { key: 'X', value: 'job2' }] });
    const vars = variableSet(collectVariables(j, ctx({ environment: { X: 'config' } }), dirs, 'running'));
    expect(vars.get('X')).toBe('job2');
    expect(vars.list.filter((v) => v.key === 'X')).toHaveLength(1);
  });

  it('expands non-raw values once against the full list, never raw ones', () => {
    const resolved = resolveVariables([
      { key: 'A', value: 'a' },
      { key: 'B', value: '$A-$C' },
      { key: 'C', value: 'c$A' },
      { key: 'R', value: '$A', raw: true },
      { key: 'A', value: 'A2' },
    ]);
    const get = (k: string) => resolved.find((v) => v.key === k)?.value;
    expect(get('B')).toBe('A2-c$A');
    expect(get('R')).toBe('$A');
    expect(resolved.map((v) => v.key)).toEqual(['B', 'C', 'R', 'A']);
  });

  it('file variables: path under RUNNER_TEMP_PROJECT_DIR, content expanded, references give the path', () => {
    const j = job({
      variables: [
        { key: 'CI_JOB_TOKEN', value: 't' },
        { key: 'CFG', value: 'url=$HOST', file: true },
        { key: 'HOST', value: 'h' },
        { key: 'USES', value: 'cat $CFG' },
      ],
    });
    const vars = variableSet(collectVariables(j, ctx(), dirs, 'running'));
    const cfg = vars.list.find((v) => v.key === 'CFG')!;
    expect(cfg.filePath).toBe('/home/fr/builds/group/sub/app.tmp/CFG');
    expect(cfg.value).toBe('url=h');
    expect(vars.get('USES')).toBe('cat /home/fr/builds/group/sub/app.tmp/CFG');
  });

  it('parses booleans as Go does', () => {
    const vars = variableSet([
      { key: 'T', value: 'TRUE' },
      { key: 'O', value: '1' },
      { key: 'F', value: 'f' },
      { key: 'Z', value: '0' },
      { key: 'J', value: 'yes' },
    ]);
    expect([vars.bool('T'), vars.bool('O'), vars.bool('F'), vars.bool('Z'), vars.bool('J'), vars.bool('NONE')]).toEqual([
      true,
      true,
      false,
      false,
      undefined,
      undefined,
    ]);
  });

  describe('debug mode (the trace PATCHes\' debug_trace), as gitlab-runner decides it', () => {
    const v = (key: string, value: string | null) => ({ key, value: value as string });
    it.each([
      [[v('CI_DEBUG_TRACE', 'true')], true],
      [[v('CI_DEBUG_TRACE', '1')], true],
      [[v('CI_DEBUG_TRACE', 'TRUE')], true],
      [[v('CI_DEBUG_TRACE', 't')], true],
      [[v('CI_DEBUG_SERVICES', 'True')], true],
      [[v('CI_DEBUG_TRACE', 'yes')], false],
      // strconv.ParseBool exactly: no other case, no spaces, no other integers
      [[v('CI_DEBUG_TRACE', 'tRuE')], false],
      [[v('CI_DEBUG_TRACE', ' true')], false],
      [[v('CI_DEBUG_TRACE', '01')], false],
      [[v('CI_DEBUG_TRACE', null)], false],
      [[v('CI_DEBUG_TRACE', 'true'), v('CI_DEBUG_TRACE', 'false')], false], // a group's true, the job's false
      [[v('CI_DEBUG_TRACE', 'false'), v('CI_DEBUG_TRACE', '1')], true],
      [[v('OTHER', 'true')], false],
    ])('%j → %s', (list, expected) => {
      expect(debugModeEnabled(list)).toBe(expected);
    });
  });
});
