// The whole path on "EC2": the real coordinator (startCoordinator) against the strict fake GitLab, the ec2
// provider against the stateful fake EC2 at the SDK boundary, and everything after the SDK call for real:
// the instance is a real sshd booted from the user data the provider rendered (pinned host key, the
// coordinator's client key), the job runs over SSH with real git, and the instance is terminated after.
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

const root = mkdtempSync(join(tmpdir(), 'fr-fullpath-'));
const sshdPids: number[] = [];
afterAll(() => {
  stopBooted(sshdPids);
  rmSync(root, { recursive: true, force: true });
});

describe('full path on EC2 (fake EC2, real SSH/git/job)', () => {
  it('launches an instance, pins its host key, runs the job on it, and terminates it', async () => {
    const gitlab = new FakeGitLab({ traceUpdateIntervalS: 1 });
    await gitlab.start();
    const runner = gitlab.addRunner();
    const ec2 = new FakeEc2({ pendingDescribes: 1, privateIp: () => '127.0.0.1' });
    const port = await freeLoopbackPort();
    const config = {
      ...compileConfig({
        gitlab: { url: gitlab.url, token: runner.token },
        concurrent: 1,
        checkInterval: '1s',
        stateDir: join(root, 'state'),
        log: { level: 'error' },
        executors: [
          { name: 'dind', provider: 'ec2', style: 'shell', maxMachines: 1, bootTimeout: '20s', ec2: { subnets: ['subnet-0aaa1111', 'subnet-0bbb2222'], instanceTypes: ['c6i.xlarge'], sshUser: userInfo().username } },
        ],
      }),
      // Faster polling than a config file may ask for (checkInterval ≥ 1s): the test drives every job itself.
      checkIntervalMs: 100,
    };
    // The instance's disk (/builds and /cache on a real instance) is a temp dir here.
    const provider = bootingEc2Provider({ ec2, config: config.executors[0]!.ec2!, executor: 'dind', fleet: config.fleet, port, root, pids: sshdPids });
    const handle = await startCoordinator(config, { logger: silentLogger, providerFor: () => provider });
    try {
      const project = await gitlab.createProject({ path: 'infra/app', files: { 'Dockerfile': 'FROM scratch\n' } });
      const p = await gitlab.createPipeline(project, [{ name: 'on-ec2', script: ['test -f Dockerfile', 'echo "running on the instance as $(id -un)"'] }]);
      const job = await gitlab.waitForJobState(p.jobIds[0]!, ['success', 'failed'], 60_000);
      expect(job.traceText).toContain('running on the instance as');
      expect(job.state).toBe('success');
      const launched = ec2.runInputs.at(-1)!;
      expect(launched.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
      expect(JSON.stringify(launched)).not.toContain(runner.token);
      expect(JSON.stringify(launched)).not.toContain(job.token);
    } finally {
      handle.stop();
      expect(await handle.done).toBe(0);
      await gitlab.stop();
    }
    expect(ec2.live()).toEqual([]);
    expect(gitlab.violations).toEqual([]);
  }, 90_000);
});
