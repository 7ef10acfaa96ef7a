import { ECRClient, ECRServiceException, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, RetryableError, type Clock, type Logger } from '../../../src/core/index.js';
import {
  dockerConfigJson,
  EcrLogins,
  parseEcrRegistry,
  REFRESH_MARGIN_MS,
  secretsOf,
  type EcrLogin,
} from '../../../src/providers/aws/ecr.js';

const HOUR = 3600_000;
const T0 = Date.UTC(2025, 5, 1, 8, 0, 0);
const EU = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const EU_OTHER_ACCOUNT = '210987654321.dkr.ecr.eu-west-1.amazonaws.com';
const US = '123456789012.dkr.ecr.us-east-1.amazonaws.com';
const CLIENT_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

class FakeClock implements Clock {
  constructor(public t = T0) {}
  now(): number {
    return this.t;
  }
  async sleep(): Promise<void> {}
}

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void =>
      void lines.push({ level, fields, msg });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

function tokenFor(password: string, expiresAt: number): { authorizationData: Array<{ authorizationToken: string; expiresAt: Date; proxyEndpoint: string }> } {
  return {
    authorizationData: [{ authorizationToken: Buffer.from(`AWS:${password}`).toString('base64'), expiresAt: new Date(expiresAt), proxyEndpoint: `https://${EU}` }],
  };
}

function client(region: string): ECRClient {
  return new ECRClient({ region, credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: CLIENT_SECRET } });
}

const mocks: Array<{ restore(): void }> = [];
afterEach(() => {
  for (const m of mocks.splice(0)) m.restore();
});

function mocked(region: string): { ecr: ECRClient; mock: AwsClientStub<ECRClient> } {
  const ecr = client(region);
  const mock = mockClient(ecr);
  mocks.push(mock);
  return { ecr, mock };
}

describe('parseEcrRegistry', () => {
  it('reads account and region from the registry host', () => {
    expect(parseEcrRegistry(EU)).toEqual({ registry: EU, accountId: '123456789012', region: 'eu-west-1' });
    expect(parseEcrRegistry(`https://${US}/`).registry).toBe(US);
    expect(parseEcrRegistry('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn').region).toBe('cn-north-1');
    expect(parseEcrRegistry('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com').region).toBe('us-gov-west-1');
    expect(() => parseEcrRegistry('registry.gitlab.com')).toThrow(PermanentError);
    expect(() => parseEcrRegistry('123.dkr.ecr.eu-west-1.amazonaws.com')).toThrow(PermanentError);
  });
});

describe('EcrLogins', () => {
  it('decodes the token into an AWS login for each registry', async () => {
    const { ecr, mock } = mocked('eu-west-1');
    mock.on(GetAuthorizationTokenCommand).resolves(tokenFor('pw-eu-1', T0 + 12 * HOUR));
    const logs: LogLine[] = [];
    const logins = await new EcrLogins({ ecr, clock: new FakeClock(), logger: recordingLogger(logs) }).loginFor([EU, EU_OTHER_ACCOUNT, EU]);
    expect(logins).toEqual([
      { registry: EU, username: 'AWS', password: 'pw-eu-1', expiresAt: T0 + 12 * HOUR },
      { registry: EU_OTHER_ACCOUNT, username: 'AWS', password: 'pw-eu-1', expiresAt: T0 + 12 * HOUR },
    ]);
    expect(mock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
    expect(mock.commandCalls(GetAuthorizationTokenCommand)[0]!.args[0].input).toEqual({});
    expect(JSON.stringify(logs)).not.toContain('pw-eu-1');
    expect(logs.some((l) => l.msg === 'fetched ECR login')).toBe(true);
  });

  it('reuses the token until 30 minutes before it expires, then fetches a new one', async () => {
    const { ecr, mock } = mocked('eu-west-1');
    const clock = new FakeClock();
    mock
      .on(GetAuthorizationTokenCommand)
      .resolvesOnce(tokenFor('first', T0 + 12 * HOUR))
      .resolvesOnce(tokenFor('second', T0 + 24 * HOUR));
    const logins = new EcrLogins({ ecr, clock, logger: recordingLogger([]) });
    expect((await logins.loginFor([EU]))[0]!.password).toBe('first');
    clock.t = T0 + 12 * HOUR - REFRESH_MARGIN_MS - 1;
    expect((await logins.loginFor([EU]))[0]!.password).toBe('first');
    expect(mock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
    clock.t = T0 + 12 * HOUR - REFRESH_MARGIN_MS;
    const renewed = await logins.loginFor([EU]);
    expect(renewed[0]).toMatchObject({ password: 'second', expiresAt: T0 + 24 * HOUR });
    expect(mock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(2);
  });

  it('callers asking at the same time share one request', async () => {
    const { ecr, mock } = mocked('eu-west-1');
    mock.on(GetAuthorizationTokenCommand).resolves(tokenFor('pw', T0 + 12 * HOUR));
    const logins = new EcrLogins({ ecr, clock: new FakeClock(), logger: recordingLogger([]) });
    const all = await Promise.all([logins.loginFor([EU]), logins.loginFor([EU_OTHER_ACCOUNT]), logins.loginFor([EU])]);
    expect(all.map((l) => l[0]!.password)).toEqual(['pw', 'pw', 'pw']);
    expect(mock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
  });

  it('makes one call per region, each with that region\'s client', async () => {
    const made: string[] = [];
    const byRegion = new Map<string, ReturnType<typeof mocked>>();
    const factory = (region: string): ECRClient => {
      made.push(region);
      const m = mocked(region);
      m.mock.on(GetAuthorizationTokenCommand).resolves(tokenFor(`pw-${region}`, T0 + 12 * HOUR));
      byRegion.set(region, m);
      return m.ecr;
    };
    const logins = new EcrLogins({ ecr: factory, clock: new FakeClock(), logger: recordingLogger([]) });
    const out = await logins.loginFor([EU, US, EU_OTHER_ACCOUNT]);
    expect(out.map((l) => [l.registry, l.password])).toEqual([
      [EU, 'pw-eu-west-1'],
      [US, 'pw-us-east-1'],
      [EU_OTHER_ACCOUNT, 'pw-eu-west-1'],
    ]);
    await logins.loginFor([US]);
    expect(made.sort()).toEqual(['eu-west-1', 'us-east-1']);
    for (const m of byRegion.values()) expect(m.mock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(1);
  });

  it('refuses a registry in another region than the single client it was given', async () => {
    const { ecr, mock } = mocked('eu-west-1');
    const logins = new EcrLogins({ ecr, clock: new FakeClock(), logger: recordingLogger([]) });
    await expect(logins.loginFor([US])).rejects.toThrow(/us-east-1.*eu-west-1.*factory/);
    expect(mock.commandCalls(GetAuthorizationTokenCommand)).toHaveLength(0);
  });

  it('AccessDenied is a permanent error naming the registry and the IAM action, with no secret', async () => {
    const { ecr, mock } = mocked('eu-west-1');
    const clock = new FakeClock();
    const denied = new ECRServiceException({
      name: 'AccessDeniedException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400, requestId: 'req-1' },
      message:
        'User: arn:aws:sts::123456789012:assumed-role/fr-coordinator/task is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action',
    });
    mock.on(GetAuthorizationTokenCommand).resolvesOnce(tokenFor('earlier-secret', T0 + HOUR)).rejects(denied);
    const logs: LogLine[] = [];
    const logins = new EcrLogins({ ecr, clock, logger: recordingLogger(logs) });
    const earlier = await logins.loginFor([EU]);
    clock.t = T0 + HOUR; // expired: must ask again
    const err = await logins.loginFor([EU]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    const message = (err as Error).message;
    expect(message).toContain(EU);
    expect(message).toContain('ecr:GetAuthorizationToken');
    expect(message).toMatch(/task role/);
    for (const secret of [...secretsOf(earlier), CLIENT_SECRET]) {
      expect(message).not.toContain(secret);
      expect(JSON.stringify(logs)).not.toContain(secret);
    }
    // A failure is not cached: the next call asks again.
    mock.on(GetAuthorizationTokenCommand).resolves(tokenFor('after-fix', T0 + 13 * HOUR));
    expect((await logins.loginFor([EU]))[0]!.password).toBe('after-fix');
  });

  it('throttling and server errors are retryable; a malformed token is permanent', async () => {
    const { ecr, mock } = mocked('eu-west-1');
    const logins = new EcrLogins({ ecr, clock: new FakeClock(), logger: recordingLogger([]) });
    const throttled = new ECRServiceException({ name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'Rate exceeded' });
    mock.on(GetAuthorizationTokenCommand).rejectsOnce(throttled);
    await expect(logins.loginFor([EU])).rejects.toBeInstanceOf(RetryableError);
    const server = new ECRServiceException({ name: 'ServerException', $fault: 'server', $metadata: { httpStatusCode: 500 }, message: 'oops' });
    mock.on(GetAuthorizationTokenCommand).rejectsOnce(server);
    await expect(logins.loginFor([EU])).rejects.toBeInstanceOf(RetryableError);
    mock.on(GetAuthorizationTokenCommand).resolves({ authorizationData: [{ authorizationToken: Buffer.from('no-colon').toString('base64') }] });
    await expect(logins.loginFor([EU])).rejects.toBeInstanceOf(PermanentError);
  });
});

describe('dockerConfigJson and secretsOf', () => {
  const logins: EcrLogin[] = [
    { registry: EU, username: 'AWS', password: 'pw-eu', expiresAt: T0 },
    { registry: US, username: 'AWS', password: 'pw-us', expiresAt: T0 },
  ];

  it('writes auths entries as docker login does', () => {
    const config = JSON.parse(dockerConfigJson(logins)) as { auths: Record<string, { auth: string }> };
    expect(Object.keys(config)).toEqual(['auths']);
    expect(Buffer.from(config.auths[EU]!.auth, 'base64').toString()).toBe('AWS:pw-eu');
    expect(Buffer.from(config.auths[US]!.auth, 'base64').toString()).toBe('AWS:pw-us');
  });

  it('adds credential helpers that do not shadow a login', () => {
    const config = JSON.parse(dockerConfigJson(logins, { extraCredHelpers: { [EU_OTHER_ACCOUNT]: 'ecr-login' } })) as Record<string, unknown>;
    expect(config['credHelpers']).toEqual({ [EU_OTHER_ACCOUNT]: 'ecr-login' });
    expect(() => dockerConfigJson(logins, { extraCredHelpers: { [EU]: 'ecr-login' } })).toThrow(/shadow/);
    // Docker reads every registry from a credsStore and ignores auths: refuse rather than drop the logins.
    expect(() => dockerConfigJson(logins, { credsStore: 'ecr-login' })).toThrow(/credsStore/);
    expect(JSON.parse(dockerConfigJson([], { credsStore: 'ecr-login' }))).toEqual({ auths: {}, credsStore: 'ecr-login' });
  });

  it('secretsOf lists every form a password takes in the config', () => {
    const secrets = secretsOf(logins);
    expect(secrets).toEqual(expect.arrayContaining(['pw-eu', 'pw-us', Buffer.from('AWS:pw-eu').toString('base64'), Buffer.from('AWS:pw-us').toString('base64')]));
    const text = dockerConfigJson(logins);
    const masked = secrets.reduce((t, s) => t.replaceAll(s, '[MASKED]'), text);
    expect(masked).not.toMatch(/pw-|QVdTOnB3/);
  });
});
