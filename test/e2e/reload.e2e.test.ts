// SIGHUP reloads the config file (gitlab-runner's habit): a higher `concurrent` lets queued jobs start
// while a running job goes on undisturbed; an invalid file is logged with its key path and changes nothing.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.cleanup();
  stack = undefined;
});

const until = async (cond: () => boolean, ms = 60_000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  expect(cond()).toBe(true);
};

describe('e2e: SIGHUP reloads the config', () => {
  it('raises concurrent mid-run without disturbing the running job; an invalid file keeps the old config', async () => {
    stack = await startStack({ concurrent: 1 });
    const s = stack;
    const configPath = join(s.dir, 'fleetrunner.yaml');
    const original = readFileSync(configPath, 'utf8');
    // Somewhere the job's user can look (local machines may run jobs as an unprivileged user).
    const gateDir = mkdtempSync(join(tmpdir(), 'fr-gate-'));
    chmodSync(gateDir, 0o755);
    const gate = join(gateDir, 'release-first-job');
    const p = await createSimplePipeline(s.fake, [
      { name: 'long', script: ['echo long started', `while [ ! -e ${gate} ]; do sleep 0.2; done`, 'echo long done'] },
      { name: 'queued-1', script: ['echo q1'] },
      { name: 'queued-2', script: ['echo q2'] },
    ]);
    const [long, q1, q2] = p.jobIds as [number, number, number];
    await s.fake.waitForJobState(long, ['running'], 30_000);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(s.fake.job(q1).state).toBe('pending'); // concurrent: 1 holds them back

    // An invalid file: logged with the key path, nothing changes, the coordinator keeps running.
    writeFileSync(configPath, original.replace('concurrent: 1', 'concurrent: -3'));
    s.child.kill('SIGHUP');
    await until(() => /config reload failed/.test(s.log()));
    const failure = s.log().split('\n').find((l) => l.includes('config reload failed'));
    expect(failure).toMatch(/concurrent: expected a whole number/);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(s.fake.job(q1).state).toBe('pending');
    expect(s.child.exitCode).toBeNull();

    writeFileSync(configPath, original.replace('concurrent: 1', 'concurrent: 3'));
    s.child.kill('SIGHUP');
    await until(() => /"msg":"config reloaded"/.test(s.log()));
    for (const id of [q1, q2]) expect((await waitFinished(s.fake, id, 60_000)).state).toBe('success');
    expect(s.fake.job(long).state).toBe('running'); // still going, undisturbed
    writeFileSync(gate, '');
    const done = await waitFinished(s.fake, long, 60_000);
    expect(done.state).toBe('success');
    expect(done.traceText).toContain('long done');
    expect(await s.stop()).toBe(0);
    expect(s.fake.violations).toEqual([]);
  }, 180_000);
});
