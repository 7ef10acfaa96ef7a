// The AWS side of the built CLI in the VM test. The fake EC2 lives at the SDK boundary (aws-sdk-client-mock
// on client objects of the test process), and the CLI is another process. So the CLI is started with
// `node --import test/vm/aws-bridge-preload.mjs bin/fleetrunner.js run …`: that preload replaces `send` of
// the SDK's EC2, SSM and ECR clients with a call to this bridge, which runs the same command on the test's
// clients (the fake EC2 booting VMs, a mocked ECR) and sends back their output or their error. Everything
// from the SDK call upwards is the CLI's own code, unchanged.
//
// The bridge listens on 127.0.0.1 with a bearer token made per test; only the CLI it was given to can call it.

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import * as ec2Module from '@aws-sdk/client-ec2';
import * as ecrModule from '@aws-sdk/client-ecr';
import * as ssmModule from '@aws-sdk/client-ssm';

export const AWS_BRIDGE_PRELOAD = join(import.meta.dirname, 'aws-bridge-preload.mjs');

type Service = 'ec2' | 'ssm' | 'ecr';
interface SendsCommands {
  send(command: unknown): Promise<unknown>;
}

export interface AwsBridge {
  url: string;
  /** Environment for the CLI process: where the bridge is, its token, and no way to reach real AWS. */
  env: Record<string, string>;
  /** `node` arguments that load the preload. */
  nodeArgs: string[];
  /** Every call, in order ("ec2:RunInstancesCommand"). */
  calls: string[];
  close(): Promise<void>;
}

const MODULES: Record<Service, Record<string, unknown>> = { ec2: ec2Module, ssm: ssmModule, ecr: ecrModule };

/** Dates do not survive JSON: tag them. */
function encode(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const raw = this[key];
    return raw instanceof Date ? { $date: raw.toISOString() } : v;
  });
}

export async function startAwsBridge(clients: Record<Service, SendsCommands>): Promise<AwsBridge> {
  const token = randomBytes(24).toString('hex');
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      void (async () => {
        const reply = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(encode(payload));
        };
        if (req.headers.authorization !== `Bearer ${token}`) return reply(403, { bridgeError: 'bad token' });
        let call: { service: Service; command: string; input: unknown };
        try {
          call = JSON.parse(body) as typeof call;
        } catch {
          return reply(400, { bridgeError: 'not JSON' });
        }
        const Ctor = MODULES[call.service]?.[call.command];
        if (typeof Ctor !== 'function' || !call.command.endsWith('Command')) return reply(400, { bridgeError: `unknown command ${call.service}:${call.command}` });
        calls.push(`${call.service}:${call.command}`);
        try {
          const command = new (Ctor as new (input: unknown) => unknown)(call.input ?? {});
          const output = await clients[call.service].send(command);
          reply(200, { output });
        } catch (e) {
          const err = e as { name?: string; message?: string; $fault?: string; $metadata?: { httpStatusCode?: number } };
          reply(200, { error: { name: err.name ?? 'Error', message: err.message ?? String(e), $fault: err.$fault ?? 'client', $metadata: { httpStatusCode: err.$metadata?.httpStatusCode ?? 400 } } });
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    env: {
      FLEETRUNNER_TEST_AWS_BRIDGE: url,
      FLEETRUNNER_TEST_AWS_BRIDGE_TOKEN: token,
      // Belt and braces: a client the preload missed would fail here instead of reaching AWS.
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ACCESS_KEY_ID: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, // made here, as the secret is: never a literal
      AWS_SECRET_ACCESS_KEY: randomBytes(20).toString('hex'),
      AWS_REGION: 'eu-west-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    nodeArgs: ['--import', AWS_BRIDGE_PRELOAD],
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
