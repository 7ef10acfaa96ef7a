// The idle pool on "EC2": the real coordinator with pool.idleCount 1 on the ec2 provider (fake EC2 at the
// SDK boundary; each instance a real sshd booted from its own user data on its own loopback address).
// The instance is launched before any job, the job runs on it without a launch of its own, a replacement
// is launched after, and a stop leaves no instance running.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCoordinator } from '../../../src/cli/run.js';
import { compileConfig } from '../../../src/config/index.js';
import { silentLogger } from '../../../src/core/index.js';
import { FakeGitLab } from '../../../src/fakegitlab/index.js';
import { freeLoopbackPort } from '../../../src/providers/local/sshd-process.js';
import { bootingEc2Provider, stopBooted } from '../../helpers/ec2-boot.js';
import { FakeEc2 } from '../../helpers/fake-ec2.js';

const root = mkdtempSync(join(tmpdir(), 'fr-ec2-pool-'));
const sshdPids: number[] = [];
afterAll(() => {
  stopBooted(sshdPids);
  rmSync(root, { recursive: true, force: true });
});

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('idle pool on EC2 (fake EC2, real SSH/job)', () => {
  it('launches the idle instance before any job, runs the job on it, refills, and leaves nothing at stop', async () => {
    const gitlab = new FakeGitLab({ traceUpdateIntervalS: 1 });
    await gitlab.start();
    const runner = gitlab.addRunner();
    // Instance n listens on 127.0.0.(10+n): every instance its own address, as in a subnet.
    const ec2 = new FakeEc2({ pendingDescribes: 1, privateIp: (n) => `127.0.0.${10 + n}` });
    const port = await freeLoopbackPort();
    const config = {
      ...compileConfig({
        gitlab: { url: gitlab.url, token: runner.token },
        concurrent: 1,
        checkInterval: '1s',
        stateDir: join(root, 'state'),
        log: { level: 'error' },
        executors: [
          {
            name: 'dind',
            provider: 'ec2',
            style: 'shell',
            maxMachines: 2,
            bootTimeout: '20s',
            pool: { idleCount: 1 },
            ec2: { subnets: ['subnet-0aaa1111', 'subnet-0bbb2222'], instanceTypes: ['c6i.xlarge'], sshUser: userInfo().username },
          },
        ],
      }),
      // Faster polling than a config file may ask for (checkInterval ≥ 1s): the test drives every job itself.
      checkIntervalMs: 100,
    };
    const provider = bootingEc2Provider({ ec2, config: config.executors[0]!.ec2!, executor: 'dind', fleet: config.fleet, port, root, pids: sshdPids });
    const handle = await startCoordinator(config, { logger: silentLogger, providerFor: () => provider });
    try {
      await until('an idle instance', () => handle.machines().dind?.idle === 1);
      expect(ec2.calls.RunInstances).toBe(1);
      const [pooled] = ec2.live();

      const project = await gitlab.createProject({ path: 'infra/app', files: { 'README.md': 'x\n' } });
      const p = await gitlab.createPipeline(project, [{ name: 'pooled', script: ['echo "server=${SSH_CONNECTION##* 127.0.0.}"'] }]);
      const job = await gitlab.waitForJobState(p.jobIds[0]!, ['success', 'failed'], 60_000);
      expect(job.state).toBe('success');
      // SSH_CONNECTION ends with the server's address and port: the job ran on the pooled instance.
      expect(job.traceText).toMatch(new RegExp(`server=${pooled!.privateIp.split('.')[3]} ${port}`));

      // The used instance is terminated (one job per machine), and the pool launched its replacement.
      await until('the refill', () => handle.machines().dind?.idle === 1 && handle.machines().dind?.busy === 0 && ec2.live().length === 1);
      expect(ec2.calls.RunInstances).toBe(2);
      expect(ec2.live()[0]!.id).not.toBe(pooled!.id);
      for (const input of ec2.runInputs) expect(JSON.stringify(input)).not.toContain(runner.token);
    } finally {
      handle.stop();
      expect(await handle.done).toBe(0);
      await gitlab.stop();
    }
    expect(ec2.live()).toEqual([]);
    expect(gitlab.violations).toEqual([]);
  }, 90_000);
});
