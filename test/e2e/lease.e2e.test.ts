// One coordinator per fleet, through the BUILT CLI: two `fleetrunner run` processes of one fleet started at
// once against the strict fake GitLab share a lease, either a DynamoDB item (the fake DynamoDB served over
// HTTP on loopback, reached through AWS_ENDPOINT_URL_DYNAMODB as the SDK resolves it) or a lease directory.
// Only the holder takes jobs; SIGKILL on it hands over within the lease time; the successor then takes jobs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeGitLab } from '../../src/fakegitlab/index.js';
import { parseLeaseItem } from '../../src/providers/aws/dynamodb-lease.js';
import { FakeDynamoDb } from '../helpers/fake-dynamodb.js';
import { contractConfig, createSimplePipeline, waitFinished } from './harness.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'fleetrunner.js');
const DURATION_MS = 6_000;
const ARN = (name: string) => `arn:aws:ecs:eu-west-1:123456789012:task/ci-cluster/${name}0123456789abcdef`;

interface Coordinator {
  name: string;
  child: ChildProcess;
  exit: Promise<number | null>;
  log(): string;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The ECS task metadata endpoint (v4): /v4/<name>/task answers that task's ARN. */
async function taskMetadata(): Promise<string> {
  const server: Server = createServer((req, res) => {
    const m = /^\/v4\/([a-z]+)\/task$/.exec(req.url ?? '');
    res.writeHead(m ? 200 : 404, { 'content-type': 'application/json' });
    res.end(m ? JSON.stringify({ Cluster: 'ci-cluster', TaskARN: ARN(m[1]!) }) : '{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4`;
}

const until = async (what: string, cond: () => boolean, timeoutMs = 30_000) => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

async function fleet(kind: 'dynamodb' | 'file') {
  const fake = new FakeGitLab();
  await fake.start();
  cleanups.push(() => fake.stop());
  const { token } = fake.addRunner();
  const dir = mkdtempSync(join(tmpdir(), 'fr-e2e-lease-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const metadata = await taskMetadata();
  let env: Record<string, string> = {};
  let ddb: FakeDynamoDb | undefined;
  if (kind === 'dynamodb') {
    ddb = new FakeDynamoDb();
    ddb.createTable('fleetrunner-lease');
    const endpoint = await ddb.listen();
    cleanups.push(() => ddb!.close());
    env = { AWS_ENDPOINT_URL_DYNAMODB: endpoint, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'AKIAFAKE', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true' };
  }
  const store = kind === 'dynamodb' ? ['  dynamodb: { table: fleetrunner-lease }'] : [`  file: { path: ${join(dir, 'lease')} }`];
  const start = (name: string): Coordinator => {
    const configPath = join(dir, `${name}.yaml`);
    writeFileSync(
      configPath,
      contractConfig(fake.url, 2, [`stateDir: ${join(dir, `state-${name}`)}`, 'lease:', ...store, '  duration: 6s', '  renewInterval: 2s', '  maxClockSkew: 1s'], false, [
        '  - name: local',
        '    provider: local',
        '    style: shell',
        '    maxMachines: 2',
        `    environment: { COORDINATOR: ${name} }`,
      ]),
    );
    const child = spawn(process.execPath, [BIN, 'run', '--config', configPath], {
      env: { ...process.env, ...env, FR_E2E_TOKEN: token, ECS_CONTAINER_METADATA_URI_V4: `${metadata}/${name}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exit;
      }
    });
    return { name, child, exit, log: () => out };
  };
  return { fake, ddb, dir, start };
}

const acquired = (c: Coordinator) => c.log().includes('lease acquired: this coordinator is the active one');

describe.each(['dynamodb', 'file'] as const)('e2e: one coordinator per fleet (%s lease)', (kind) => {
  it('two coordinators started at once: only the holder takes jobs; SIGKILL hands over within the lease time', async () => {
    const { fake, ddb, dir, start } = await fleet(kind);
    const both = [start('alpha'), start('beta')];
    await until('one coordinator to hold the lease', () => both.some(acquired));
    const holder = both.find(acquired)!;
    const standby = both.find((c) => c !== holder)!;
    await until('the other to wait', () => standby.log().includes(`waiting for the lease held by ${ARN(holder.name)} pid `));
    expect(standby.log()).not.toContain('coordinator started');

    const first = await createSimplePipeline(fake, [1, 2, 3].map((i) => ({ name: `job-${i}`, script: ['echo "ran on $COORDINATOR"'] })));
    for (const id of first.jobIds) {
      const job = await waitFinished(fake, id);
      expect(job.state).toBe('success');
      expect(job.traceText).toContain(`ran on ${holder.name}`);
    }
    expect(acquired(standby)).toBe(false);
    // A job's records stay on its machine until GitLab has its result, and go a moment after (then the machine
    // is removed). A kill in that moment would have the standby report job 3 again (GitLab answers 403), which
    // the strict fake counts; this test is about the lease, so it kills once the machines are gone.
    await until('the holder to remove the three machines', () => (holder.log().match(/"msg":"removing machine"/g) ?? []).length >= 3);

    // A crash: the holder gets no chance to release. The standby takes over once the record expires (DynamoDB),
    // or as soon as it sees the holder's process is gone (lease directory on this host).
    holder.child.kill('SIGKILL');
    const killedAt = Date.now();
    await holder.exit;
    await until('the standby to take over', () => acquired(standby), DURATION_MS + 10_000);
    const handoverMs = Date.now() - killedAt;
    expect(handoverMs).toBeLessThan(DURATION_MS + 3_000);
    await until('the standby to start', () => standby.log().includes('coordinator started'));

    const second = await createSimplePipeline(fake, [{ name: 'after', script: ['echo "ran on $COORDINATOR"'] }]);
    const after = await waitFinished(fake, second.jobIds[0]!);
    expect(after.state).toBe('success');
    expect(after.traceText).toContain(`ran on ${standby.name}`);

    standby.child.kill('SIGTERM');
    expect(await standby.exit).toBe(0);
    expect(standby.log()).toContain('lease released');
    if (ddb) {
      expect(parseLeaseItem(ddb.item('fleetrunner-lease', 'fleetrunner'))).toMatchObject({ expiresAt: 0, version: 2, owner: `${ARN(standby.name)} pid ${standby.child.pid}` });
    } else {
      const files = readdirSync(join(dir, 'lease')).filter((f) => f.endsWith('.json'));
      expect(files).toEqual(['fleetrunner.2.json']);
      expect(JSON.parse(readFileSync(join(dir, 'lease', files[0]!), 'utf8'))).toMatchObject({ released: true, version: 2 });
    }
    expect(fake.violations).toEqual([]);
  }, 120_000);

  it('SIGTERM while waiting for the lease exits 0 at once', async () => {
    const { start } = await fleet(kind);
    const holder = start('alpha');
    await until('the holder', () => acquired(holder));
    const waiting = start('beta');
    await until('the second to wait', () => waiting.log().includes('waiting for the lease held by'));
    const t = Date.now();
    waiting.child.kill('SIGTERM');
    expect(await waiting.exit).toBe(0);
    expect(Date.now() - t).toBeLessThan(3_000);
    expect(waiting.log()).toContain('stopped while waiting for the lease');
    holder.child.kill('SIGTERM');
    expect(await holder.exit).toBe(0);
  }, 60_000);
});
