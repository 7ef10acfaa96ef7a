// The built CLI with an S3 cache (a real S3-compatible server, s3rver, checking SigV4 presigned URLs):
// two jobs on two different fresh machines share a cache through the bucket, never through a disk.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalS3, type LocalS3 } from '../integration/aws/s3rver.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';

let stack: Stack | undefined;
let s3: LocalS3 | undefined;
afterEach(async () => {
  await stack?.cleanup();
  await s3?.stop();
  stack = undefined;
  s3 = undefined;
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

describe('e2e: shared cache in S3', () => {
  it('a cache written by one job on one machine is restored by the next job on another machine', async () => {
    s3 = await startLocalS3('fr-e2e-cache');
    stack = await startStack({
      executors: [
        '  - name: local',
        '    provider: local',
        '    maxMachines: 2',
        '    cache:',
        `      s3: { bucket: fr-e2e-cache, prefix: ci/, endpoint: "${s3.endpoint}", forcePathStyle: true, region: us-east-1 }`,
      ],
      env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    });
    const cache = { key: 'deps', paths: ['vendor/'] };
    const p = await createSimplePipeline(stack.fake, [
      { name: 'fill', stage: 'build', cache, script: ['mkdir -p vendor', 'echo "cached-payload-7" > vendor/lib.txt'] },
      { name: 'use', stage: 'test', cache: { ...cache, policy: 'pull' }, script: ['cat vendor/lib.txt', 'grep -q cached-payload-7 vendor/lib.txt'] },
    ]);
    const fill = await waitFinished(stack.fake, p.jobIds[0]!, 90_000);
    expect(fill.state).toBe('success');
    expect(fill.traceText).toContain('Created cache');
    expect(filesUnder(s3.directory).some((f) => f.includes('cache.zip'))).toBe(true);
    const use = await waitFinished(stack.fake, p.jobIds[1]!, 90_000);
    expect(use.state).toBe('success');
    expect(use.traceText).toContain('Successfully extracted cache');
    expect(use.traceText).toContain('cached-payload-7');
    for (const t of [fill.traceText, use.traceText]) expect(t).not.toMatch(/X-Amz-Signature=[0-9a-f]{8}/);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 150_000);
});
