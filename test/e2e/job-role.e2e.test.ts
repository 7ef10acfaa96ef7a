// A job on an executor with a jobRole gets its own AWS credentials, through the built CLI: the coordinator
// assumes the role at a fake STS (reached through AWS_ENDPOINT_URL_STS, STS's query protocol), and the job —
// docker style, in its own image — sees working credentials as masked variables: the values it holds are
// the ones STS issued for its session, and none of them appears in its trace. A long job (the file form,
// with the fake granting 20 s sessions) outlives two sessions: a real SDK client in one running process calls
// GetCallerIdentity again with a renewed session, a coordinator that takes the job over mid-way renews from
// the session on the machine, and a docker job's build container sees the renewal.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX_IMAGE, ensureDocker, ensureTestImages } from '../helpers/docker-images.js';
import { FakeSts } from '../helpers/fake-sts.js';
import { createSimplePipeline, startStack, waitFinished, type Stack } from './harness.js';
import { killUnder, setOnShutdown, waitForTrace } from './handoff-helpers.js';

const ROLE = 'arn:aws:iam::123456789012:role/ci-deploy-dev';
let stack: Stack | undefined;
let closeSts: (() => Promise<void>) | undefined;
beforeAll(() => {
  ensureDocker();
  ensureTestImages();
}, 120_000);
afterEach(async () => {
  await stack?.cleanup();
  await closeSts?.();
  stack = undefined;
  closeSts = undefined;
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The coordinator's own AWS settings: a fake STS at `url`, fake keys, no instance metadata. */
const stsEnv = (url: string) => ({ AWS_ENDPOINT_URL_STS: url, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'fake-coordinator-key', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true' });

/** A fake STS with ROLE (sessions of `grantSeconds` when given), listening; closed after the test. */
async function startSts(grantSeconds?: number): Promise<{ sts: FakeSts; url: string }> {
  const sts = new FakeSts(grantSeconds === undefined ? undefined : { grantSeconds });
  sts.addRole(ROLE, 3600);
  const endpoint = await sts.listen();
  closeSts = endpoint.close;
  return { sts, url: endpoint.url };
}

/** A docker-style local executor `deploy-dev` in the busybox test image, with a jobRole of ROLE and `roleLines`. */
const dockerDeployDev = (roleLines: string[]) => [
  '  - name: deploy-dev',
  '    provider: local',
  '    style: docker',
  '    maxMachines: 1',
  '    docker:',
  `      defaultImage: ${BUSYBOX_IMAGE}`,
  '      pullPolicy: if-not-present',
  '    jobRole:',
  `      roleArn: ${ROLE}`,
  ...roleLines,
];

/** Paths of files named `name` under `root` (none when root is missing). */
function findFiles(root: string, name: string): string[] {
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[]).filter((p) => p.endsWith(`/${name}`)).map((p) => join(root, p));
}

describe('e2e: AWS credentials per job from the executor\'s jobRole', () => {
  it('a docker-style job gets masked STS credentials of its role, in a session named after it', async () => {
    const { sts, url } = await startSts();
    stack = await startStack({
      env: stsEnv(url),
      executors: dockerDeployDev(['      region: eu-west-1']),
    });
    const p = await createSimplePipeline(stack.fake, [
      {
        name: 'sam-deploy',
        image: BUSYBOX_IMAGE,
        script: [
          'echo "key id: $AWS_ACCESS_KEY_ID"',
          'echo "secret: $AWS_SECRET_ACCESS_KEY"',
          'printf %s "$AWS_SECRET_ACCESS_KEY" | sha256sum',
          'printf %s "$AWS_SESSION_TOKEN" | sha256sum',
          'echo "region: $AWS_REGION"',
        ],
      },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job.state).toBe('success');
    expect(sts.issued).toHaveLength(1);
    const s = sts.issued[0]!;
    expect(s.sessionName).toBe(`fleetrunner-job-${job.id}`);
    expect(s.tags['gitlab-job']).toBe(String(job.id));
    // The job holds exactly what STS issued for its session…
    expect(job.traceText).toContain(sha256(s.secretAccessKey));
    expect(job.traceText).toContain(sha256(s.sessionToken));
    // …and its trace shows none of it.
    expect(job.traceText).toContain('key id: [MASKED]');
    expect(job.traceText).toContain('secret: [MASKED]');
    for (const v of [s.accessKeyId, s.secretAccessKey, s.sessionToken]) expect(job.traceText).not.toContain(v);
    expect(job.traceText).toContain(`Using AWS credentials of role ${ROLE} for this job`);
    expect(job.traceText).toContain('region: eu-west-1');
    // Nor does the coordinator's log.
    for (const v of [s.secretAccessKey, s.sessionToken]) expect(stack.log()).not.toContain(v);
    expect(await stack.stop()).toBe(0);
    expect(stack.fake.violations).toEqual([]);
  }, 180_000);

  it('a long job keeps working: its credentials file is renewed before each session expires, and a running SDK picks the new one up', async () => {
    // Sessions of 20 s (the fake grants less than asked): the job outlives two of them.
    const { sts, url } = await startSts(20);
    const machines = mkdtempSync(join(tmpdir(), 'fr-e2e-machines-'));
    stack = await startStack({
      env: stsEnv(url),
      executors: [
        '  - name: deploy-dev',
        '    provider: local',
        '    style: shell',
        '    maxMachines: 1',
        '    local:',
        `      root: ${machines}`,
        '    jobRole:',
        `      roleArn: ${ROLE}`,
        '      region: eu-west-1',
        '      credentials: file',
      ],
    });
    // One SDK client for the whole job, as a long `sam deploy` or `terraform apply` has: its default chain
    // finds the credential_process and must run it again once the first session is over.
    const sdk = createRequire(import.meta.url).resolve('@aws-sdk/client-sts');
    const script = [
      `const m = await import(${JSON.stringify(sdk)});`,
      'const { STSClient, GetCallerIdentityCommand } = m.default ?? m;',
      'const { createHash } = await import("node:crypto");',
      'const client = new STSClient({});',
      'const call = async (n) => {',
      '  const who = await client.send(new GetCallerIdentityCommand({}));',
      '  const key = (await client.config.credentials()).accessKeyId;',
      '  console.log(`call ${n}: ${who.Arn} with key ${createHash("sha256").update(key).digest("hex")}`);',
      '};',
      'await call(1);',
      'await new Promise((r) => setTimeout(r, 30_000));',
      'await call(2);',
    ].join('\n');
    const project = await stack.fake.createProject({ path: `e2e/long${Math.floor(Math.random() * 1e9)}`, files: { 'who.mjs': script } });
    const p = await stack.fake.createPipeline(project, [
      {
        name: 'long-deploy',
        variables: { AWS_ENDPOINT_URL_STS: url },
        script: [
          'echo "key variable: ${AWS_ACCESS_KEY_ID:-none}"',
          'stat -c "mode %a" "$(dirname "$AWS_CONFIG_FILE")/credentials.json"',
          'node who.mjs',
        ],
      },
    ]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 150_000);
    expect(job.traceText).toContain('from a credentials file renewed while the job runs');
    expect(job.state).toBe('success');
    expect(job.traceText).toContain('key variable: none');
    expect(job.traceText).toContain('mode 600');
    const arn = `arn:aws:sts::123456789012:assumed-role/ci-deploy-dev/fleetrunner-job-${job.id}`;
    const first = sts.issued[0]!;
    expect(job.traceText).toContain(`call 1: ${arn} with key ${sha256(first.accessKeyId)}`);
    // The second call, 30 s on, ran with a later session: the first had expired.
    const second = /call 2: (\S+) with key ([0-9a-f]{64})/.exec(job.traceText)!;
    expect(second[1]).toBe(arn);
    const used = sts.issued.findIndex((s) => sha256(s.accessKeyId) === second[2]);
    expect(used).toBeGreaterThan(0);
    expect(sts.identityCalls.filter((c) => c.answer !== 'ok')).toEqual([]);
    // Every session is masked in the trace and absent from the log; nothing of them stays on the machine.
    for (const s of sts.issued) {
      for (const v of [s.accessKeyId, s.secretAccessKey, s.sessionToken]) expect(job.traceText).not.toContain(v);
      for (const v of [s.secretAccessKey, s.sessionToken]) expect(stack.log()).not.toContain(v);
    }
    expect(await stack.stop()).toBe(0);
    expect(findFiles(machines, 'credentials.json')).toEqual([]);
    expect(stack.fake.violations).toEqual([]);
    rmSync(machines, { recursive: true, force: true });
  }, 200_000);

  it('a coordinator that takes a long job over renews its credentials from the session on the machine', async () => {
    const { sts, url } = await startSts(20);
    const machines = mkdtempSync(join(tmpdir(), 'fr-e2e-machines-'));
    stack = await startStack({
      freshHome: true,
      extra: ['onShutdown: handoff', 'handoffTimeout: 5s', 'shutdownTimeout: 60s'],
      env: stsEnv(url),
      executors: ['  - name: deploy-dev', '    provider: local', '    style: shell', '    maxMachines: 1', '    local:', `      root: ${machines}`, '    jobRole:', `      roleArn: ${ROLE}`, '      region: eu-west-1', '      credentials: file'],
    });
    try {
      const sdk = createRequire(import.meta.url).resolve('@aws-sdk/client-sts');
      const script = [
        `const m = await import(${JSON.stringify(sdk)});`,
        'const { STSClient, GetCallerIdentityCommand } = m.default ?? m;',
        'const { createHash } = await import("node:crypto");',
        'const client = new STSClient({});',
        'const who = await client.send(new GetCallerIdentityCommand({}));',
        'const key = (await client.config.credentials()).accessKeyId;',
        'console.log(`caller: ${who.Arn} with key ${createHash("sha256").update(key).digest("hex")}`);',
      ].join('\n');
      const project = await stack.fake.createProject({ path: `e2e/takeover${Math.floor(Math.random() * 1e9)}`, files: { 'who.mjs': script } });
      const p = await stack.fake.createPipeline(project, [{ name: 'long-deploy', variables: { AWS_ENDPOINT_URL_STS: url }, script: ['echo started', 'sleep 40', 'node who.mjs'] }]);
      const id = p.jobIds[0]!;
      await waitForTrace(stack, id, 'started\n');
      stack.child.kill('SIGTERM');
      expect(await stack.waitExit(15_000)).toBe(0);
      expect(stack.log()).toContain('job handed off to a successor');
      const before = sts.issued.length;

      setOnShutdown(stack, 'drain');
      stack.launchAgain();
      const job = await waitFinished(stack.fake, id, 150_000);
      expect(job.state).toBe('success');
      expect(stack.log()).toContain('continuing a job found on its machine');
      // The call 40 s in used a session the successor asked for (every earlier one had expired by then).
      const used = /caller: \S+ with key ([0-9a-f]{64})/.exec(job.traceText)?.[1];
      expect(sts.issued.slice(before).map((s) => sha256(s.accessKeyId))).toContain(used);
      expect(sts.identityCalls.filter((c) => c.answer !== 'ok')).toEqual([]);
      for (const s of sts.issued) for (const v of [s.secretAccessKey, s.sessionToken]) expect(job.traceText).not.toContain(v);
      expect(await stack.stop(60_000)).toBe(0);
      expect(findFiles(machines, 'credentials.json')).toEqual([]);
    } finally {
      killUnder(machines);
      rmSync(machines, { recursive: true, force: true });
    }
  }, 240_000);

  it('in the docker style the build container sees each renewed session (the directory is mounted, not the file)', async () => {
    const { sts, url } = await startSts(20);
    stack = await startStack({
      env: stsEnv(url),
      executors: dockerDeployDev(['      credentials: file']),
    });
    // What an SDK in the container does: run the profile's credential_process.
    const keyOf = 'sh -c "$(sed -n "s/^credential_process = //p" "$AWS_CONFIG_FILE")" | sed "s/.*\\"AccessKeyId\\":\\"\\([A-Z0-9]*\\)\\".*/\\1/" | tr -d "\\n" | sha256sum';
    const p = await createSimplePipeline(stack.fake, [{ name: 'sam-deploy', image: BUSYBOX_IMAGE, script: [`echo "before: $(${keyOf})"`, 'sleep 25', `echo "after: $(${keyOf})"`] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 150_000);
    expect(job.state).toBe('success');
    const before = /before: ([0-9a-f]{64})/.exec(job.traceText)?.[1];
    const after = /after: ([0-9a-f]{64})/.exec(job.traceText)?.[1];
    expect(before).toBe(sha256(sts.issued[0]!.accessKeyId));
    expect(sts.issued.slice(1).map((s) => sha256(s.accessKeyId))).toContain(after);
    expect(await stack.stop()).toBe(0);
  }, 200_000);

  it('a role STS refuses fails the job as a system failure naming the role and the reason', async () => {
    // Only the dev role exists: STS refuses the prod one.
    const { url } = await startSts();
    stack = await startStack({
      env: stsEnv(url),
      executors: ['  - name: deploy-prod', '    provider: local', '    style: shell', '    maxMachines: 1', '    jobRole:', `      roleArn: ${ROLE.replace('dev', 'prod')}`],
    });
    const p = await createSimplePipeline(stack.fake, [{ name: 'deploy', script: ['echo never'] }]);
    const job = await waitFinished(stack.fake, p.jobIds[0]!, 120_000);
    expect(job).toMatchObject({ state: 'failed', failureReason: 'runner_system_failure' });
    expect(job.traceText).toContain(`could not get AWS credentials for the job: STS AssumeRole on ${ROLE.replace('dev', 'prod')}: AccessDenied`);
    expect(job.traceText).not.toContain('never\n');
    expect(await stack.stop()).toBe(0);
  }, 180_000);
});
