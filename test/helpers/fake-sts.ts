// A stateful fake of STS AssumeRole, with STS's own rules where they bite us:
// - only roles it knows (`addRole`) can be assumed; anything else is AccessDenied, as a trust policy that does
//   not name the caller would be; `deny()` refuses every call (a task role without sts:AssumeRole);
// - RoleSessionName 2–64 of [\w+=,.@-]; DurationSeconds 900 up to the role's MaxSessionDuration
//   (ValidationError past it, as STS says); at most 50 session tags, keys ≤ 128 and values ≤ 256 characters
//   of [\p{L}\p{Z}\p{N}_.:/=+\-@];
// - each call issues new credentials (ASIA… key id, secret, session token), remembered with their session;
// - GetCallerIdentity (over `listen()`) answers only a request that carries a live session's key id and token
//   (the SigV4 Authorization header's Credential and X-Amz-Security-Token; the signature is not checked):
//   ExpiredToken after its Expiration, InvalidClientTokenId for keys it never issued.
// Test-only, unlike STS: `grantSeconds` issues sessions shorter than asked (AWS's floor is 15 minutes), so a
// test can watch a job outlive one in seconds; the coordinator only ever reads the Expiration it is given.
// Two ways in: `client` (aws-sdk-client-mock) and `listen()` (STS's query protocol, XML answers, on loopback),
// so the built CLI reaches it through AWS_ENDPOINT_URL_STS.

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AssumeRoleCommand, STSClient, STSServiceException, type AssumeRoleCommandInput } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';

export interface IssuedSession {
  roleArn: string;
  sessionName: string;
  durationSeconds: number;
  tags: Record<string, string>;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

class FakeStsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const TAG = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

export class FakeSts {
  readonly issued: IssuedSession[] = [];
  /** GetCallerIdentity calls: the key id each used and what the fake answered. */
  readonly identityCalls: Array<{ accessKeyId: string; answer: 'ok' | 'ExpiredToken' | 'InvalidClientTokenId' }> = [];
  private readonly roles = new Map<string, { maxSessionS: number }>();
  private denied = false;
  readonly client: STSClient;

  constructor(private readonly o: { grantSeconds?: number } = {}) {
    this.client = new STSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'fake', secretAccessKey: 'fake' } });
    mockClient(this.client)
      .on(AssumeRoleCommand)
      .callsFake((input: AssumeRoleCommandInput) => {
        try {
          return this.toOutput(this.assumeRole(input));
        } catch (e) {
          if (!(e instanceof FakeStsError)) throw e;
          throw new STSServiceException({ name: e.code, $fault: 'client', $metadata: { httpStatusCode: e.status }, message: e.message });
        }
      });
  }

  addRole(roleArn: string, maxSessionS = 3600): void {
    this.roles.set(roleArn, { maxSessionS });
  }

  deny(): void {
    this.denied = true;
  }

  assumeRole(input: AssumeRoleCommandInput): IssuedSession {
    const arn = input.RoleArn ?? '';
    if (this.denied) throw new FakeStsError('AccessDenied', `User: arn:aws:sts::123456789012:assumed-role/coordinator/task is not authorized to perform: sts:AssumeRole on resource: ${arn}`, 403);
    const role = this.roles.get(arn);
    if (!role) throw new FakeStsError('AccessDenied', `User: arn:aws:sts::123456789012:assumed-role/coordinator/task is not authorized to perform: sts:AssumeRole on resource: ${arn}`, 403);
    const name = input.RoleSessionName ?? '';
    if (!SESSION_NAME.test(name)) throw new FakeStsError('ValidationError', `1 validation error detected: Value '${name}' at 'roleSessionName' failed to satisfy constraint`);
    const duration = input.DurationSeconds ?? 3600;
    if (duration < 900 || duration > role.maxSessionS) {
      throw new FakeStsError('ValidationError', `The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`);
    }
    const tags: Record<string, string> = {};
    for (const t of input.Tags ?? []) {
      const k = t.Key ?? '';
      const v = t.Value ?? '';
      if (!k || k.length > 128 || v.length > 256 || !TAG.test(k) || !TAG.test(v)) throw new FakeStsError('ValidationError', `invalid session tag ${JSON.stringify(k)}`);
      tags[k] = v;
    }
    if ((input.Tags ?? []).length > 50) throw new FakeStsError('ValidationError', 'at most 50 session tags');
    const s: IssuedSession = {
      roleArn: arn,
      sessionName: name,
      durationSeconds: duration,
      tags,
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64url'),
      sessionToken: randomBytes(96).toString('base64'),
      expiration: new Date(Date.now() + (this.o.grantSeconds ?? duration) * 1000),
    };
    this.issued.push(s);
    return s;
  }

  private toOutput(s: IssuedSession) {
    return {
      Credentials: { AccessKeyId: s.accessKeyId, SecretAccessKey: s.secretAccessKey, SessionToken: s.sessionToken, Expiration: s.expiration },
      AssumedRoleUser: { AssumedRoleId: `AROAFAKE:${s.sessionName}`, Arn: `${s.roleArn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${s.sessionName}` },
    };
  }

  private callerIdentity(authorization: string, token: string): { session: IssuedSession } | { code: 'ExpiredToken' | 'InvalidClientTokenId'; message: string } {
    const keyId = /Credential=([A-Z0-9]+)\//.exec(authorization)?.[1] ?? '';
    const s = this.issued.find((x) => x.accessKeyId === keyId && x.sessionToken === token);
    const answer = !s ? 'InvalidClientTokenId' : s.expiration.getTime() <= Date.now() ? 'ExpiredToken' : 'ok';
    this.identityCalls.push({ accessKeyId: keyId, answer });
    if (answer === 'ok') return { session: s! };
    return answer === 'ExpiredToken'
      ? { code: answer, message: 'The security token included in the request is expired' }
      : { code: answer, message: 'The security token included in the request is invalid.' };
  }

  /** STS's query protocol on loopback: form-encoded requests, XML answers. Resolves with the endpoint URL. */
  async listen(): Promise<{ url: string; close(): Promise<void> }> {
    const server: Server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const p = new URLSearchParams(body);
        const xml = (status: number, text: string) => {
          res.writeHead(status, { 'content-type': 'text/xml' });
          res.end(text);
        };
        if (p.get('Action') === 'GetCallerIdentity') {
          const r = this.callerIdentity(String(req.headers.authorization ?? ''), String(req.headers['x-amz-security-token'] ?? ''));
          return 'session' in r ? xml(200, identityXml(r.session)) : xml(403, errorXml(r.code, r.message));
        }
        if (p.get('Action') !== 'AssumeRole') return xml(400, errorXml('InvalidAction', `fake STS: ${p.get('Action')} is not modelled`));
        const tags: Array<{ Key: string; Value: string }> = [];
        for (let i = 1; p.has(`Tags.member.${i}.Key`); i++) tags.push({ Key: p.get(`Tags.member.${i}.Key`)!, Value: p.get(`Tags.member.${i}.Value`) ?? '' });
        try {
          const s = this.assumeRole({
            RoleArn: p.get('RoleArn') ?? '',
            RoleSessionName: p.get('RoleSessionName') ?? '',
            ...(p.has('DurationSeconds') && { DurationSeconds: Number(p.get('DurationSeconds')) }),
            Tags: tags,
          });
          xml(200, successXml(s));
        } catch (e) {
          if (e instanceof FakeStsError) return xml(e.status, errorXml(e.code, e.message));
          xml(500, errorXml('InternalFailure', String(e)));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function successXml(s: IssuedSession): string {
  return `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials><AccessKeyId>${s.accessKeyId}</AccessKeyId><SecretAccessKey>${esc(s.secretAccessKey)}</SecretAccessKey><SessionToken>${esc(s.sessionToken)}</SessionToken><Expiration>${s.expiration.toISOString()}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROAFAKE:${esc(s.sessionName)}</AssumedRoleId><Arn>${esc(s.roleArn)}/${esc(s.sessionName)}</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>fake-sts</RequestId></ResponseMetadata></AssumeRoleResponse>`;
}

function identityXml(s: IssuedSession): string {
  const arn = `${s.roleArn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${s.sessionName}`;
  return `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${esc(arn)}</Arn><UserId>AROAFAKE:${esc(s.sessionName)}</UserId><Account>${s.roleArn.split(':')[4] ?? ''}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>fake-sts</RequestId></ResponseMetadata></GetCallerIdentityResponse>`;
}

function errorXml(code: string, message: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error><RequestId>fake-sts</RequestId></ErrorResponse>`;
}
