// A stateful fake of SSM Parameter Store at the SDK boundary, for the rotated runner token: GetParameter,
// PutParameter and DeleteParameter, with Parameter Store's own rules where they bite us:
// - names: letters, digits, `_.-/`; a path must start with `/`; at most 15 levels; names starting with
//   aws or ssm are reserved (ValidationException);
// - PutParameter of an existing name without Overwrite is ParameterAlreadyExists; Tags with Overwrite and
//   KeyId on a non-SecureString are ValidationException; a Standard-tier value is at most 4 KB; each put
//   makes a new Version;
// - GetParameter of a SecureString without WithDecryption returns ciphertext, not the value; a name that
//   does not exist is ParameterNotFound (DeleteParameter too);
// - throughput: GetParameter shares Parameter Store's default 40 TPS; PutParameter is held to 3 TPS here (a
//   conservative reading of its lower default); beyond them ThrottlingException "Rate exceeded";
// - `deny(op)` answers AccessDeniedException, as IAM would for a task role without the action.
//
// Two ways in, like fake-dynamodb.ts: `client` (aws-sdk-client-mock) and `listen()` (the JSON 1.1 protocol on
// loopback), so the built CLI reaches it through AWS_ENDPOINT_URL_SSM.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeleteParameterCommand,
  GetParameterCommand,
  PutParameterCommand,
  SSMClient,
  SSMServiceException,
  type DeleteParameterCommandInput,
  type GetParameterCommandInput,
  type PutParameterCommandInput,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';

export type FakeSsmOp = 'GetParameter' | 'PutParameter' | 'DeleteParameter';

export interface StoredParameter {
  name: string;
  type: 'String' | 'StringList' | 'SecureString';
  value: string;
  keyId?: string;
  version: number;
  description?: string;
}

export class FakeSsmError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }

  toSdk(): Error {
    return new SSMServiceException({ name: this.code, $fault: this.status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: this.status }, message: this.message });
  }
}

const RATE: Record<FakeSsmOp, number> = { GetParameter: 40, PutParameter: 3, DeleteParameter: 3 };
const STANDARD_MAX_BYTES = 4096;
const NAME = /^[A-Za-z0-9_.\-/]{1,1011}$/;

export class FakeSsm {
  readonly client = new SSMClient({ region: 'eu-west-1', credentials: { accessKeyId: 'fake-access-key', secretAccessKey: 'fake' } });
  readonly parameters = new Map<string, StoredParameter>();
  readonly calls: Record<FakeSsmOp, number> = { GetParameter: 0, PutParameter: 0, DeleteParameter: 0 };
  readonly denied = new Set<FakeSsmOp>();
  private readonly queued: Record<FakeSsmOp, FakeSsmError[]> = { GetParameter: [], PutParameter: [], DeleteParameter: [] };
  private readonly buckets: Record<FakeSsmOp, { tokens: number; at: number }>;
  private server?: Server;

  constructor(private readonly now: () => number = Date.now) {
    const t = now();
    this.buckets = { GetParameter: { tokens: RATE.GetParameter, at: t }, PutParameter: { tokens: RATE.PutParameter, at: t }, DeleteParameter: { tokens: RATE.DeleteParameter, at: t } };
    const m = mockClient(this.client);
    const via = <I>(op: FakeSsmOp) => (input: I) => this.call(op, input).catch((e: unknown) => Promise.reject(e instanceof FakeSsmError ? e.toSdk() : e));
    m.on(GetParameterCommand).callsFake(via<GetParameterCommandInput>('GetParameter'));
    m.on(PutParameterCommand).callsFake(via<PutParameterCommandInput>('PutParameter'));
    m.on(DeleteParameterCommand).callsFake(via<DeleteParameterCommandInput>('DeleteParameter'));
  }

  deny(op: FakeSsmOp): void {
    this.denied.add(op);
  }

  /** The next `times` calls of `op` fail with `code` (default InternalServerError, 500). */
  failNext(op: FakeSsmOp, times = 1, code = 'InternalServerError', status = 500): void {
    for (let i = 0; i < times; i++) this.queued[op].push(new FakeSsmError(code, `fake ${code}`, status));
  }

  async listen(): Promise<string> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const op = String(req.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '') as FakeSsmOp;
        const send = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `fake-ssm-${this.calls[op] ?? 0}` });
          res.end(JSON.stringify(payload));
        };
        if (!(op in this.calls)) return send(400, { __type: 'UnknownOperationException', message: `fake SSM: ${op} is not modelled` });
        let input: unknown;
        try {
          input = JSON.parse(body || '{}');
        } catch {
          return send(400, { __type: 'SerializationException', message: 'body is not JSON' });
        }
        this.call(op, input).then(
          (out) => send(200, out),
          (e: unknown) => {
            const err = e instanceof FakeSsmError ? e : new FakeSsmError('InternalServerError', String(e), 500);
            send(err.status, { __type: err.code, message: err.message });
          },
        );
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async call(op: FakeSsmOp, input: unknown): Promise<Record<string, unknown>> {
    this.calls[op]++;
    const queued = this.queued[op].shift();
    if (queued) throw queued;
    if (this.denied.has(op)) throw new FakeSsmError('AccessDeniedException', `User: arn:aws:sts::123456789012:assumed-role/fleetrunner-task is not authorized to perform: ssm:${op}`);
    this.take(op);
    switch (op) {
      case 'GetParameter':
        return this.get(input as GetParameterCommandInput);
      case 'PutParameter':
        return this.put(input as PutParameterCommandInput);
      case 'DeleteParameter':
        return this.del(input as DeleteParameterCommandInput);
    }
  }

  private take(op: FakeSsmOp): void {
    const b = this.buckets[op];
    const t = this.now();
    b.tokens = Math.min(RATE[op], b.tokens + ((t - b.at) / 1000) * RATE[op]);
    b.at = t;
    if (b.tokens < 1) throw new FakeSsmError('ThrottlingException', 'Rate exceeded');
    b.tokens -= 1;
  }

  private get(i: GetParameterCommandInput): Record<string, unknown> {
    const p = this.parameters.get(checkName(i.Name));
    if (!p) throw new FakeSsmError('ParameterNotFound', '');
    const value = p.type === 'SecureString' && !i.WithDecryption ? Buffer.from(`kms:${p.keyId ?? 'alias/aws/ssm'}:${p.version}`).toString('base64') : p.value;
    return { Parameter: { Name: p.name, Type: p.type, Value: value, Version: p.version, DataType: 'text' } };
  }

  private put(i: PutParameterCommandInput): Record<string, unknown> {
    const name = checkName(i.Name);
    const type = i.Type ?? this.parameters.get(name)?.type;
    if (!type) throw new FakeSsmError('ValidationException', 'A parameter type is required when you create a parameter.');
    if (i.Value === undefined || i.Value === '') throw new FakeSsmError('ValidationException', "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1");
    if (i.Overwrite && i.Tags?.length) throw new FakeSsmError('ValidationException', 'Invalid request: tags and overwrite can\'t be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.');
    if (i.KeyId !== undefined && type !== 'SecureString') throw new FakeSsmError('ValidationException', 'KeyId is only supported for SecureString parameters');
    if ((i.Tier ?? 'Standard') === 'Standard' && Buffer.byteLength(i.Value) > STANDARD_MAX_BYTES) throw new FakeSsmError('ValidationException', 'Standard tier parameters support a maximum parameter value of 4096 characters.');
    const old = this.parameters.get(name);
    if (old && !i.Overwrite) throw new FakeSsmError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    if (old && old.type !== type) throw new FakeSsmError('HierarchyTypeMismatchException', 'The parameter type cannot be changed.');
    const version = (old?.version ?? 0) + 1;
    this.parameters.set(name, { name, type, value: i.Value, version, ...(i.KeyId !== undefined && { keyId: i.KeyId }), ...(i.Description !== undefined && { description: i.Description }) });
    return { Version: version, Tier: i.Tier ?? 'Standard' };
  }

  private del(i: DeleteParameterCommandInput): Record<string, unknown> {
    const name = checkName(i.Name);
    if (!this.parameters.delete(name)) throw new FakeSsmError('ParameterNotFound', '');
    return {};
  }
}

function checkName(name: string | undefined): string {
  if (!name || !NAME.test(name)) throw new FakeSsmError('ValidationException', `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive), and must contain only a-zA-Z0-9_.-/ : ${name ?? ''}`);
  const bare = name.replace(/^\//, '');
  if (/^(aws|ssm)/i.test(bare)) throw new FakeSsmError('ValidationException', `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive): ${name}`);
  if (name.includes('/') && !name.startsWith('/')) throw new FakeSsmError('ValidationException', 'Parameter name must be a fully qualified name (starting with /) when it has a hierarchy.');
  if (name.split('/').length - 1 > 15) throw new FakeSsmError('HierarchyLevelLimitExceededException', 'A hierarchy can have a maximum of 15 levels.');
  return name;
}
