// The real coordinator (startCoordinator) with its lease: the DynamoDB lease store against the stateful fake
// DynamoDB at the SDK boundary, its keeper on a stepped clock, GitLab faked at its HTTP API. Start-up waits
// for the lease without a word to GitLab; once held, the coordinator asks for jobs; when a renewal finds a
// successor, it stops asking at once and exits 1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCoordinator, type CoordinatorHandle } from '../../../src/cli/run.js';
import { compileConfig } from '../../../src/config/index.js';
import { silentLogger } from '../../../src/core/index.js';
import { FakeGitLab } from '../../../src/fakegitlab/index.js';
import { DynamoDbLeaseStore } from '../../../src/providers/aws/dynamodb-lease.js';
import { LeaseKeeper } from '../../../src/runner/lease-keeper.js';
import { FakeDynamoDb } from '../../helpers/fake-dynamodb.js';
import { MemoryProvider } from '../../helpers/memory-provider.js';
import { StepClock } from '../../helpers/step-clock.js';

const root = mkdtempSync(join(tmpdir(), 'fr-lease-full-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const until = async (what: string, cond: () => boolean, timeoutMs = 10_000) => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('startCoordinator with a lease', () => {
  it('waits for the lease before GitLab hears of it, takes jobs while it holds it, and stands down when a successor has it', async () => {
    const gitlab = new FakeGitLab();
    await gitlab.start();
    const runner = gitlab.addRunner();
    const ddb = new FakeDynamoDb();
    ddb.createTable('leases');
    const clock = new StepClock(Date.now());
    // Another coordinator of the fleet holds the lease for 20 more seconds.
    ddb.putRaw('leases', { pk: { S: 'fleetrunner' }, holder: { S: 'other' }, owner: { S: 'task-other' }, expiresAt: { N: String(clock.now() + 20_000) }, version: { N: '3' } });
    const config = {
      ...compileConfig({
        gitlab: { url: gitlab.url, token: runner.token },
        concurrent: 1,
        stateDir: join(root, 'state'),
        log: { level: 'error' },
        lease: { dynamodb: { table: 'leases' } },
        executors: [{ name: 'local', provider: 'local', maxMachines: 1 }],
      }),
      checkIntervalMs: 50,
    };
    const lease = new LeaseKeeper({
      store: new DynamoDbLeaseStore({ client: ddb.client, table: 'leases', key: config.fleet }),
      holder: { id: 'me', owner: 'task-me' },
      durationMs: 30_000,
      renewIntervalMs: 10_000,
      maxClockSkewMs: 5_000,
      clock,
      logger: silentLogger,
    });
    const jobRequests = () => gitlab.requests.filter((r) => r.path === '/api/v4/jobs/request').length;
    let handle: CoordinatorHandle | undefined;
    const starting = startCoordinator(config, { logger: silentLogger, providerFor: () => new MemoryProvider(), lease }).then((h) => (handle = h));
    try {
      await clock.advance(19_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(handle).toBeUndefined();
      expect(gitlab.requests).toEqual([]); // not even /runners/verify

      await clock.advance(2_000); // the other holder's lease has expired: ours now
      await starting;
      await until('job requests', () => jobRequests() >= 2);

      // A successor (whose clock ran far ahead) took the lease over: the next renewal finds it.
      ddb.putRaw('leases', { pk: { S: 'fleetrunner' }, holder: { S: 'next' }, owner: { S: 'task-next' }, expiresAt: { N: String(clock.now() + 60_000) }, version: { N: '5' } });
      await clock.advance(10_000);
      expect(await handle!.done).toBe(1);
      const asked = jobRequests();
      await new Promise((r) => setTimeout(r, 200));
      expect(jobRequests()).toBe(asked);
      // The successor's record is untouched: no release over it.
      expect(ddb.item('leases', 'fleetrunner')).toMatchObject({ holder: { S: 'next' }, version: { N: '5' } });
    } finally {
      handle?.stop();
      await gitlab.stop();
    }
    expect(gitlab.violations).toEqual([]);
  }, 60_000);
});
