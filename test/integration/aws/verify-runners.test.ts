// `fleetrunner verify` with `runners:`: each runner's token is checked against GitLab, and the SSM parameter
// its rotated token is kept in (`<gitlab.rotatedToken.ssmParameter>-<name>`) is read, each row naming it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RotatedToken } from '../../../src/cli/rotated-token.js';
import { verifyChecks } from '../../../src/cli/verify.js';
import { compileConfig } from '../../../src/config/index.js';
import { silentLogger, systemClock } from '../../../src/core/index.js';
import { FakeGitLab } from '../../../src/fakegitlab/index.js';
import { SsmSecretStore } from '../../../src/providers/aws/ssm-secret-store.js';
import { FakeSsm } from '../../helpers/fake-ssm.js';

const PARAM = '/fleetrunner/verify/runner-token';
let gitlab: FakeGitLab;
let ssm: FakeSsm;
let endpoint: string;
const saved: Record<string, string | undefined> = {};
const env = { AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'fake-access-key', AWS_SECRET_ACCESS_KEY: 'fake', AWS_EC2_METADATA_DISABLED: 'true' };

beforeAll(async () => {
  gitlab = new FakeGitLab();
  await gitlab.start();
  ssm = new FakeSsm();
  endpoint = await ssm.listen();
  for (const [k, v] of Object.entries({ ...env, AWS_ENDPOINT_URL_SSM: endpoint })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await ssm?.close();
  await gitlab?.stop();
});

describe('verify with several runners', () => {
  it('checks every runner\'s token and the parameter of its rotated token, naming the runner', async () => {
    const main = gitlab.addRunner().token;
    const deploy = gitlab.addRunner({ tags: ['deploy'] }).token;
    // The deploy runner's token was rotated by an earlier task: its own parameter holds it.
    const rotated = new RotatedToken({ store: new SsmSecretStore({ client: ssm.client, name: `${PARAM}-deploy` }), configuredToken: deploy, clock: systemClock, logger: silentLogger });
    await rotated.save({ token: deploy, obtainedAt: Date.UTC(2026, 11, 7) });
    const config = compileConfig({
      gitlab: { url: gitlab.url, token: main, rotatedToken: { ssmParameter: PARAM, region: 'eu-west-1' } },
      concurrent: 2,
      executors: [
        { name: 'local', provider: 'local', maxMachines: 1 },
        { name: 'deploy', provider: 'local', maxMachines: 1 },
      ],
      runners: [{ name: 'deploy', token: deploy, executors: ['deploy'] }],
    });
    const rows = (await verifyChecks(config)).filter((r) => r.executor === 'gitlab');
    expect(rows.map((r) => [r.check, r.target, r.status])).toEqual([
      ['gitlab-token', gitlab.url, 'pass'],
      ['rotated-token', `ssm:${PARAM}`, 'pass'],
      ['gitlab-token', `${gitlab.url} (runner deploy)`, 'pass'],
      ['rotated-token', `ssm:${PARAM}-deploy`, 'pass'],
    ]);
    expect(rows[1]!.message).toBe('readable; no rotated token saved yet');
    expect(rows[3]!.message).toBe('a rotated token saved 2026-12-07T00:00:00.000Z');
  });
});
