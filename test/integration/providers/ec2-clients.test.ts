// The AWS clients honour the SDK's own settings (AWS_ENDPOINT_URL_*, AWS_REGION, the credential chain), so
// LocalStack or any endpoint works without fleetrunner knowing; EC2 is asked once per call (capacity errors
// come back as HTTP 500, which the SDK would otherwise repeat), the others retry. Real SDK, real HTTP.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { DescribeInstancesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createAwsClients, createEc2Client } from '../../../src/providers/aws/clients.js';
import { classifyEc2Error } from '../../../src/providers/ec2/classify-error.js';

interface Seen {
  path: string;
  body: string;
  userAgent: string;
  authorization: string;
}

let server: Server;
let url: string;
const seen: Seen[] = [];
let answer: (body: string) => { status: number; type: string; body: string } = () => ({ status: 200, type: 'text/xml', body: '' });

const EC2_EMPTY = '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><reservationSet/></DescribeInstancesResponse>';
const EC2_ICE =
  '<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not have sufficient c6i.xlarge capacity.</Message></Error></Errors><RequestID>r2</RequestID></Response>';

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let b = '';
    req.on('data', (d: Buffer) => (b += d));
    req.on('end', () => resolve(b));
  });
}

const saved: Record<string, string | undefined> = {};
function setEnv(vars: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(vars)) {
    if (!(k in saved)) saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = await readBody(req);
    seen.push({ path: req.url ?? '', body, userAgent: String(req.headers['user-agent'] ?? ''), authorization: String(req.headers.authorization ?? '') });
    const a = answer(body);
    res.writeHead(a.status, { 'content-type': a.type });
    res.end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  seen.length = 0;
});

const credentials = { AWS_ACCESS_KEY_ID: 'AKIATESTTEST', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined };

describe('AWS clients', () => {
  it('send EC2 calls to AWS_ENDPOINT_URL_EC2, in AWS_REGION, with credentials from the environment', async () => {
    setEnv({ ...credentials, AWS_ENDPOINT_URL_EC2: url, AWS_REGION: 'eu-central-1', AWS_MAX_ATTEMPTS: undefined, AWS_RETRY_MODE: undefined });
    answer = () => ({ status: 200, type: 'text/xml', body: EC2_EMPTY });
    const out = await createEc2Client().send(new DescribeInstancesCommand({}));
    expect(out.Reservations).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.body).toContain('Action=DescribeInstances');
    expect(seen[0]!.authorization).toMatch(/Credential=AKIATESTTEST\/\d{8}\/eu-central-1\/ec2\//);
    expect(seen[0]!.userAgent).toContain('app/fleetrunner');
  });

  it('the region from config wins over AWS_REGION; AWS_ENDPOINT_URL covers every service', async () => {
    setEnv({ ...credentials, AWS_ENDPOINT_URL: url, AWS_ENDPOINT_URL_EC2: undefined, AWS_REGION: 'eu-central-1' });
    answer = () => ({ status: 200, type: 'text/xml', body: EC2_EMPTY });
    const clients = createAwsClients({ region: 'eu-west-1' });
    await clients.ec2.send(new DescribeInstancesCommand({}));
    expect(seen[0]!.authorization).toMatch(/\/eu-west-1\/ec2\//);
    expect(await clients.ssm.config.region()).toBe('eu-west-1');
  });

  it('EC2 is asked once: a capacity error (HTTP 500) comes straight back to placement', async () => {
    setEnv({ ...credentials, AWS_ENDPOINT_URL_EC2: url, AWS_REGION: 'eu-west-1' });
    answer = () => ({ status: 500, type: 'text/xml', body: EC2_ICE });
    const err = await createEc2Client()
      .send(new RunInstancesCommand({ ImageId: 'ami-0123456789abcdef0', MinCount: 1, MaxCount: 1 }))
      .catch((e: unknown) => e);
    expect(seen).toHaveLength(1);
    expect(classifyEc2Error(err)).toMatchObject({ kind: 'capacity', code: 'InsufficientInstanceCapacity', scope: 'pool' });
  });

  it('SSM retries a server error itself (adaptive mode, 3 attempts)', async () => {
    setEnv({ ...credentials, AWS_ENDPOINT_URL_SSM: url, AWS_REGION: 'eu-west-1', AWS_MAX_ATTEMPTS: undefined });
    answer = () => ({ status: 500, type: 'application/x-amz-json-1.1', body: JSON.stringify({ __type: 'InternalServerError', message: 'boom' }) });
    await expect(createAwsClients().ssm.send(new GetParameterCommand({ Name: '/x' }))).rejects.toThrow();
    expect(seen).toHaveLength(3);
  });
});
