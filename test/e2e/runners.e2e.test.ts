// Several runners in one coordinator (config `runners:`), through the built CLI against the fake GitLab,
// which hands tagged jobs only to runners with those tags (as Rails does). The deployment's runner (untagged
// jobs) has one machine and is full; the `deploy` runner keeps taking its own jobs meanwhile. Each trace
// names the runner (its description) and the executor.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testToken } from '../helpers/tokens.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
const gates: string[] = [];
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
  for (const d of gates.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('e2e: several runners in one coordinator', () => {
  it('a full executor of one runner does not stop the other runner from taking its jobs', async () => {
    stack = await startStack({
      concurrent: 4,
      moreRunners: [{ env: 'FR_E2E_DEPLOY_TOKEN', tags: ['deploy'], runUntagged: false, description: 'deploy runner' }],
      executors: [
        '  - name: build',
        '    provider: local',
        '    maxMachines: 1',
        '  - name: deploy',
        '    provider: local',
        '    maxMachines: 2',
        '    environment: { DEPLOY_TARGET: dev }',
      ],
      extra: ['runners:', '  - name: deploy', '    token: ${FR_E2E_DEPLOY_TOKEN}', '    description: deploys', '    executors: [deploy]'],
    });
    // Where a job user of a local machine can see it (the stack's own directory is private to this user).
    const gateDir = mkdtempSync(join(tmpdir(), 'fr-gate-'));
    chmodSync(gateDir, 0o755);
    gates.push(gateDir);
    const gate = join(gateDir, 'release-build');
    const p = await createSimplePipeline(stack.fake, [
      // Holds the build executor's only machine until the deploy job has finished.
      { name: 'build-1', script: [`while [ ! -e ${gate} ]; do sleep 0.2; done`, 'echo build one done'] },
      { name: 'build-2', script: ['echo build two done'] },
      { name: 'deploy-dev', tags: ['deploy'], script: ['echo "deploying to $DEPLOY_TARGET"'] },
    ]);
    const [build1, build2, deploy] = p.jobIds as [number, number, number];
    const deployed = await waitFinished(stack.fake, deploy, 90_000);
    expect(deployed.state).toBe('success');
    expect(deployed.traceText).toContain('deploying to dev');
    expect(deployed.traceText).toMatch(/on deploys \w+, system ID: s_[0-9a-f]{12}/);
    expect(deployed.traceText).toContain('executor "deploy" (default route (no match rules))');
    // The build runner was full all along: build-1 still runs, build-2 still waits in GitLab.
    expect(existsSync(gate)).toBe(false);
    expect(stack.fake.job(build1).state).toBe('running');
    expect(stack.fake.job(build2).state).toBe('pending');
    writeFileSync(gate, '');
    const [b1, b2] = [await waitFinished(stack.fake, build1, 90_000), await waitFinished(stack.fake, build2, 90_000)];
    expect([b1.state, b2.state]).toEqual(['success', 'success']);
    expect(b2.traceText).toContain('executor "build"');
    expect(b2.traceText).toMatch(/on fleetrunner \w+, system ID/);
    expect(b2.traceText).not.toContain('DEPLOY_TARGET');
    // Each runner asked with its own token; the tokens never reach a trace.
    for (const j of [b1, b2, deployed]) expect(j.traceText).not.toContain(stack.token);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);

  it('a runner token GitLab refuses stops the start with exit 2 naming the runner', async () => {
    const unknown = testToken('glrt-');
    stack = await startStack({
      env: { FR_E2E_DEPLOY_TOKEN: unknown },
      extra: ['runners:', '  - name: deploy', '    token: ${FR_E2E_DEPLOY_TOKEN}', '    executors: [local]'],
      executors: ['  - name: local', '    provider: local', '    maxMachines: 1', '  - name: other', '    provider: local', '    maxMachines: 1'],
    });
    expect(await stack.waitExit(60_000)).toBe(2);
    expect(stack.log()).toMatch(/fleetrunner: cannot start against http:\/\/[^ ]+ \(runner deploy\): GitLab refused the runner token \(403\)/);
    expect(stack.log()).not.toContain(unknown);
  }, 90_000);
});
