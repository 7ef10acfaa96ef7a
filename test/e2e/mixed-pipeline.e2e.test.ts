// The product's shape through the built CLI: one coordinator, two executors, one pipeline. A job with a
// `docker:dind` service goes to the `dind` executor (match.services), a plain job to the default route (the
// Fargate one in production), and each job's trace names its executor and the rule that chose it before
// anything else happens. Local machines stand in for both (shell style): privileged Docker-in-Docker needs
// a real kernel and `--privileged` (test/e2e/dind-vm.e2e.test.ts covers that), and Fargate needs ECS
// (fargate.e2e.test.ts); what this test is about is the routing. Each executor has machines of its own
// (its own `local.root`), so the checkout's path proves where each job ran.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function machinesDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `fr-e2e-${name}-`));
  dirs.push(d);
  return d;
}

describe('e2e: a mixed pipeline lands on the right executors', () => {
  it('the dind job goes to the dind executor by its service, the plain job to the default route, and each trace says so', async () => {
    const dind = machinesDir('dind');
    const plain = machinesDir('fargate');
    stack = await startStack({
      executors: [
        '  - name: dind',
        '    provider: local',
        '    style: shell',
        '    maxMachines: 2',
        '    local:',
        `      root: ${dind}`,
        '    match:',
        '      services: [docker:dind]',
        '  - name: fargate',
        '    provider: local',
        '    style: shell',
        '    maxMachines: 2',
        '    local:',
        `      root: ${plain}`,
      ],
    });
    const project = await stack.fake.createProject({ path: `e2e/mixed${Math.floor(Math.random() * 1e9)}`, files: { 'README.md': 'mixed\n' } });
    const p = await stack.fake.createPipeline(project, [
      { name: 'build-image', image: 'docker:27', services: ['docker:dind'], variables: { DOCKER_HOST: 'tcp://docker:2375' }, script: ['echo "built in $PWD"'] },
      { name: 'unit-test', image: 'node:20-alpine', script: ['echo "tested in $PWD"'] },
    ]);
    const [build, test] = await Promise.all(p.jobIds.map((id) => waitFinished(stack!.fake, id, 120_000)));
    expect(build!.state).toBe('success');
    expect(test!.state).toBe('success');

    // The banner: the executor and the rule, before the first stage.
    const banner = (text: string) => text.slice(0, text.indexOf('section_start'));
    expect(banner(build!.traceText)).toContain('executor "dind" (matched services docker:dind*)');
    expect(banner(test!.traceText)).toContain('executor "fargate" (default route (no match rules))');
    expect(build!.traceText).toContain('Running on vm via dind...');
    expect(test!.traceText).toContain('Running on vm via fargate...');
    // And the machines they ran on were their executors' own.
    expect(build!.traceText).toContain(`built in ${dind}/`);
    expect(test!.traceText).toContain(`tested in ${plain}/`);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);
});
