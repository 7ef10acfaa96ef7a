// GitLab's job payloads as Rails renders them (test/fixtures/gitlab/*.json: nulls, missing keys, `$VARIABLES`
// in names, a variable cache policy, an integer docker user), served by the fake GitLab and run end to end
// through the built CLI in both execution styles. Each fixture's own assertions are in its step scripts and
// in the checks below.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobSpec } from '../../src/fakegitlab/index.js';
import { BUSYBOX_IMAGE, docker, ensureDocker, ensureTestImages, HTTPD_IMAGE, jobResources } from '../helpers/docker-images.js';
import { startStack, waitFinished, type Stack } from './harness.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'gitlab');
const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Record<string, unknown>;
const ALL = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort();

// The fixtures name real images; the docker style runs them as local test images tagged under those names.
const STAND_INS: Record<string, string> = {
  'alpine:latest': BUSYBOX_IMAGE,
  'registry.gitlab.invalid/group/app/builder:1': BUSYBOX_IMAGE,
  'docker:dind': HTTPD_IMAGE,
  'postgres:16': HTTPD_IMAGE,
  'redis:7': HTTPD_IMAGE,
};

const shellExecutor = ['  - name: local', '    provider: local', '    style: shell', '    maxMachines: 4'];
const dockerExecutor = [
  '  - name: containers',
  '    provider: local',
  '    style: docker',
  '    maxMachines: 4',
  '    docker:',
  `      defaultImage: ${BUSYBOX_IMAGE}`,
  '      pullPolicy: if-not-present',
  '      waitForServicesTimeout: 5s',
];

/** What each fixture must show in its trace beyond success (both styles unless marked). */
const CHECKS: Record<string, { shell?: RegExp[]; docker?: RegExp[]; both?: RegExp[] }> = {
  'pipeline-name-unset': { both: [/name=unset/, /label=\[\|\]/] },
  'pipeline-name-set': { both: [/name=Nightly build/] },
  'image-from-variable': { docker: [/Using Docker executor with image registry\.gitlab\.invalid\/group\/app\/builder:1/] },
  'cache-policy-variable': { both: [/Checking cache for deps-protected/] },
  'docker-user-int': { docker: [/file variable content/, /Uploading artifacts/] },
  hooks: { both: [/pre-get-sources[\s\S]*post-get-sources[\s\S]*\bscript\b/] },
  services: { docker: [/docker:dind/, /postgres:16/, /redis:7/] },
};

function jobsFor(style: 'shell' | 'docker'): JobSpec[] {
  const jobs: JobSpec[] = [{ name: 'prepare', stage: 'build', script: ['echo no artifacts here'] }];
  for (const name of ALL) {
    if (name === 'pipeline-name-set') continue; // needs a named pipeline of its own
    const payload = fixture(name);
    const spec: JobSpec = { name, stage: 'test', payload, dependencies: name === 'sparse-entries' ? ['prepare'] : [] };
    if (name === 'pipeline-name-unset') {
      // A reference to a variable GitLab sends as null expands to "", never to "null".
      const variables = [...(payload.variables as unknown[]), { key: 'PIPELINE_LABEL', value: '[$CI_PIPELINE_NAME|${CI_PIPELINE_NAME}]', public: true, masked: false }];
      spec.payload = { ...payload, variables };
      spec.script = ['echo "name=${CI_PIPELINE_NAME:-unset}"', 'echo "label=$PIPELINE_LABEL"', 'test "${CI_PIPELINE_NAME+set}" = set', 'test -z "$CI_PIPELINE_NAME"'];
    }
    // The shell style runs on the machine itself, where the image's user does not apply.
    if (name === 'docker-user-int' && style === 'shell') spec.script = ['id'];
    if (name === 'docker-user-int' && style === 'docker') {
      // As uid 1000 the job writes in the checkout and reads a file variable; the machine's own stages
      // after it (artifacts, cleanup) still work on what it wrote.
      const variables = [...(payload.variables as unknown[]), { key: 'FIXTURE_FILE', value: 'file variable content', public: false, masked: false, file: true }];
      const artifacts = [{ name: null, paths: ['out/'], when: null, expire_in: null, artifact_type: 'archive', artifact_format: 'zip' }];
      spec.payload = { ...payload, variables, artifacts };
      spec.script = ['test "$(id -u)" = 1000', 'mkdir -p out', 'id -u > out/uid.txt', 'cat "$FIXTURE_FILE"'];
    }
    jobs.push(spec);
  }
  return jobs;
}

describe.each(['shell', 'docker'] as const)('e2e: Rails-shaped payloads in the %s style', (style) => {
  let stack: Stack | undefined;
  beforeAll(() => {
    if (style !== 'docker') return;
    ensureDocker();
    ensureTestImages();
    for (const [name, image] of Object.entries(STAND_INS)) docker('tag', image, name);
  }, 120_000);
  afterAll(async () => {
    await stack?.cleanup();
    if (style === 'docker') for (const name of Object.keys(STAND_INS)) docker('image', 'rm', name);
  });

  it('runs every fixture to success with what the fixture asks for', async () => {
    stack = await startStack({ executors: style === 'shell' ? shellExecutor : dockerExecutor });
    const { fake } = stack;
    const project = await fake.createProject({ path: `e2e/rails-${style}`, files: { 'README.md': 'fixtures\n' }, description: 'Fixture project' });
    const plain = await fake.createProject({ path: `e2e/rails-${style}-plain`, files: { 'README.md': 'fixtures\n' } });
    const pipeline = await fake.createPipeline(plain, jobsFor(style));
    const named = await fake.createPipeline(project, [{ name: 'pipeline-name-set', payload: fixture('pipeline-name-set') }], { name: 'Nightly build' });

    const ids = [...pipeline.jobIds, ...named.jobIds];
    for (const id of ids) {
      const job = await waitFinished(fake, id, 180_000);
      const label = `${job.name} (${style}): ${job.failureReason ?? ''}\n${job.traceText}`;
      expect(job.state, label).toBe('success');
      const checks = CHECKS[job.name];
      for (const re of [...(checks?.both ?? []), ...(checks?.[style] ?? [])]) expect(job.traceText, label).toMatch(re);
      expect(job.traceText, label).not.toMatch(/TypeError|is not iterable|Cannot read properties/);
      if (style === 'docker') expect(jobResources(job.id)).toEqual({ containers: [], networks: [], volumes: [] });
    }

    const byName = new Map(ids.map((id) => fake.job(id)).map((j) => [j.name, j]));
    // Artifacts with null name/when/expire_in and a compacted junit entry were uploaded as GitLab asked.
    expect(byName.get('sparse-entries')!.artifacts.map((a) => a.type).sort()).toEqual(['archive', 'junit']);
    expect(byName.get('sparse-entries')!.traceText).not.toMatch(/Downloading artifacts/);
    expect(byName.get('untracked-only')!.artifacts.map((a) => a.type)).toEqual(['archive']);
    if (style === 'docker') expect(byName.get('docker-user-int')!.artifacts.map((a) => a.type)).toEqual(['archive']);
    // `pull` from $CACHE_POLICY: restored (nothing there yet), never archived.
    expect(byName.get('cache-policy-variable')!.traceText).not.toMatch(/Creating cache/);

    expect(await stack.stop()).toBe(0);
    expect(fake.violations).toEqual([]);
  }, 400_000);
});
