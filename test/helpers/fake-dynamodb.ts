// A stateful fake of DynamoDB's item API at the SDK boundary, for the lease: GetItem, PutItem, UpdateItem and
// DeleteItem on tables with a String partition key, with ConditionExpression and UpdateExpression evaluated
// as DynamoDB does for the grammar the lease uses (attribute_exists / attribute_not_exists, = <> < <= > >=,
// AND, OR, NOT, parentheses; SET with `+`, `-` and if_not_exists). Strict where DynamoDB is strict: unused
// or undefined placeholders, a missing table, a key of the wrong shape and updating the key are
// ValidationException / ResourceNotFoundException; a failed condition is ConditionalCheckFailedException,
// with the item when ReturnValuesOnConditionCheckFailure is ALL_OLD. Stricter in one respect: attribute
// names must be #placeholders (DynamoDB refuses only its ~570 reserved words bare).
//
// Two ways in: `client` is a real DynamoDBClient whose sends the model answers (aws-sdk-client-mock), and
// `listen()` serves the same model over HTTP on loopback (DynamoDB's JSON 1.0 protocol), so a separate
// process (the built CLI) can use it through AWS_ENDPOINT_URL_DYNAMODB. Tests can queue errors
// (throttling), hold calls that never answer, and step no clock: conditions carry the caller's :now.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  DynamoDBServiceException,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DeleteItemCommandInput,
  type GetItemCommandInput,
  type PutItemCommandInput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';

export type FakeDynamoOp = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';
type Item = Record<string, AttributeValue>;

/** An error as DynamoDB sends it; `item` only for ConditionalCheckFailedException. */
export class FakeDynamoError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly item?: Item,
  ) {
    super(message);
  }

  toSdk(): Error {
    if (this.code === 'ConditionalCheckFailedException') {
      return new ConditionalCheckFailedException({ $metadata: { httpStatusCode: 400 }, message: this.message, ...(this.item && { Item: this.item }) });
    }
    return new DynamoDBServiceException({ name: this.code, $fault: this.status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: this.status }, message: this.message });
  }
}

const validation = (message: string) => new FakeDynamoError('ValidationException', message);

const DEFAULT_STATUS: Record<string, number> = { InternalServerError: 500, ServiceUnavailable: 503 };

export class FakeDynamoDb {
  readonly client = new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' } });
  readonly calls: Record<FakeDynamoOp, number> = { GetItem: 0, PutItem: 0, UpdateItem: 0, DeleteItem: 0 };
  /** Every request, in order, as the model received it. */
  readonly log: Array<{ op: FakeDynamoOp; input: unknown; error?: string }> = [];
  private readonly tables = new Map<string, { key: string; items: Map<string, Item> }>();
  private readonly queued: Record<FakeDynamoOp, FakeDynamoError[]> = { GetItem: [], PutItem: [], UpdateItem: [], DeleteItem: [] };
  private readonly held: Record<FakeDynamoOp, number> = { GetItem: 0, PutItem: 0, UpdateItem: 0, DeleteItem: 0 };
  private server?: Server;

  constructor() {
    const m = mockClient(this.client);
    const via = <I>(op: FakeDynamoOp) => (input: I) => this.call(op, input).catch((e: unknown) => Promise.reject(e instanceof FakeDynamoError ? e.toSdk() : e));
    m.on(GetItemCommand).callsFake(via<GetItemCommandInput>('GetItem'));
    m.on(PutItemCommand).callsFake(via<PutItemCommandInput>('PutItem'));
    m.on(UpdateItemCommand).callsFake(via<UpdateItemCommandInput>('UpdateItem'));
    m.on(DeleteItemCommand).callsFake(via<DeleteItemCommandInput>('DeleteItem'));
  }

  // ---- what the test tells the fake ----

  createTable(name: string, partitionKey = 'pk'): void {
    this.tables.set(name, { key: partitionKey, items: new Map() });
  }

  /** The item under `key`, as stored (a copy). */
  item(table: string, key: string): Item | undefined {
    const it = this.tables.get(table)?.items.get(key);
    return it && structuredClone(it);
  }

  /** Stores an item as someone else wrote it. */
  putRaw(table: string, item: Item): void {
    const t = this.table(table);
    t.items.set(item[t.key]!.S!, structuredClone(item));
  }

  /** The next `times` calls of `op` fail with `code` (default ProvisionedThroughputExceededException). */
  failNext(op: FakeDynamoOp, times = 1, code = 'ProvisionedThroughputExceededException', message = `fake ${code}`): void {
    for (let i = 0; i < times; i++) this.queued[op].push(new FakeDynamoError(code, message, DEFAULT_STATUS[code] ?? 400));
  }

  /** The next `times` calls of `op` never answer (a network that swallows requests). */
  hangNext(op: FakeDynamoOp, times = 1): void {
    this.held[op] += times;
  }

  /** Serves the model over HTTP on 127.0.0.1 (DynamoDB JSON 1.0); returns the endpoint URL. */
  async listen(): Promise<string> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        const op = target.replace(/^DynamoDB_20120810\./, '') as FakeDynamoOp;
        const send = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `fake-${this.log.length}` });
          res.end(JSON.stringify(payload));
        };
        if (!(op in this.calls)) return send(400, { __type: 'com.amazon.coral.service#UnknownOperationException', message: `fake DynamoDB: ${target} is not modelled` });
        let input: unknown;
        try {
          input = JSON.parse(body || '{}');
        } catch {
          return send(400, { __type: 'com.amazon.coral.service#SerializationException', message: 'body is not JSON' });
        }
        this.call(op, input).then(
          (out) => send(200, out),
          (e: unknown) => {
            const err = e instanceof FakeDynamoError ? e : new FakeDynamoError('InternalServerError', String(e), 500);
            send(err.status, { __type: `com.amazonaws.dynamodb.v20120810#${err.code}`, message: err.message, ...(err.item && { Item: err.item }) });
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

  // ---- the API ----

  private async call(op: FakeDynamoOp, input: unknown): Promise<Record<string, unknown>> {
    this.calls[op]++;
    const entry: (typeof this.log)[number] = { op, input: structuredClone(input) };
    this.log.push(entry);
    if (this.held[op] > 0) {
      this.held[op]--;
      return new Promise(() => undefined);
    }
    try {
      const q = this.queued[op].shift();
      if (q) throw q;
      switch (op) {
        case 'GetItem':
          return this.getItem(input as GetItemCommandInput);
        case 'PutItem':
          return this.putItem(input as PutItemCommandInput);
        case 'UpdateItem':
          return this.updateItem(input as UpdateItemCommandInput);
        case 'DeleteItem':
          return this.deleteItem(input as DeleteItemCommandInput);
      }
    } catch (e) {
      entry.error = e instanceof FakeDynamoError ? e.code : String(e);
      throw e;
    }
  }

  private table(name: string | undefined) {
    const t = name === undefined ? undefined : this.tables.get(name.replace(/^arn:.*:table\//, ''));
    if (!t) throw new FakeDynamoError('ResourceNotFoundException', 'Requested resource not found');
    return t;
  }

  private keyOf(t: { key: string }, key: Item | undefined): string {
    const names = Object.keys(key ?? {});
    if (names.length !== 1 || names[0] !== t.key) throw validation('The provided key element does not match the schema');
    const v = key![t.key]!;
    if (typeof v.S !== 'string' || Object.keys(v).length !== 1) throw validation('The provided key element does not match the schema');
    if (v.S === '') throw validation('One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value.');
    return v.S;
  }

  private getItem(i: GetItemCommandInput) {
    const t = this.table(i.TableName);
    const item = t.items.get(this.keyOf(t, i.Key));
    return item ? { Item: structuredClone(item) } : {};
  }

  private putItem(i: PutItemCommandInput) {
    const t = this.table(i.TableName);
    const key = this.keyOf(t, i.Item && { [t.key]: i.Item[t.key]! });
    const old = t.items.get(key);
    const x = new Expressions(i.ExpressionAttributeNames, i.ExpressionAttributeValues);
    if (i.ConditionExpression !== undefined) this.check(x, i.ConditionExpression, old, i.ReturnValuesOnConditionCheckFailure);
    x.assertAllUsed();
    t.items.set(key, structuredClone(i.Item!));
    return i.ReturnValues === 'ALL_OLD' && old ? { Attributes: old } : {};
  }

  private deleteItem(i: DeleteItemCommandInput) {
    const t = this.table(i.TableName);
    const key = this.keyOf(t, i.Key);
    const old = t.items.get(key);
    const x = new Expressions(i.ExpressionAttributeNames, i.ExpressionAttributeValues);
    if (i.ConditionExpression !== undefined) this.check(x, i.ConditionExpression, old, i.ReturnValuesOnConditionCheckFailure);
    x.assertAllUsed();
    t.items.delete(key);
    return i.ReturnValues === 'ALL_OLD' && old ? { Attributes: old } : {};
  }

  private updateItem(i: UpdateItemCommandInput) {
    const t = this.table(i.TableName);
    const key = this.keyOf(t, i.Key);
    const old = t.items.get(key);
    const x = new Expressions(i.ExpressionAttributeNames, i.ExpressionAttributeValues);
    if (i.ConditionExpression !== undefined) this.check(x, i.ConditionExpression, old, i.ReturnValuesOnConditionCheckFailure);
    const next: Item = structuredClone(old ?? { [t.key]: { S: key } });
    if (i.UpdateExpression !== undefined) {
      for (const [name, value] of x.parseSet(i.UpdateExpression, old ?? {})) {
        if (name === t.key) throw validation(`One or more parameter values were invalid: Cannot update attribute ${name}. This attribute is part of the key`);
        next[name] = value;
      }
    }
    x.assertAllUsed();
    t.items.set(key, next);
    switch (i.ReturnValues ?? 'NONE') {
      case 'NONE':
        return {};
      case 'ALL_NEW':
        return { Attributes: structuredClone(next) };
      case 'ALL_OLD':
        return old ? { Attributes: structuredClone(old) } : {};
      default:
        throw validation(`fake DynamoDB: ReturnValues ${i.ReturnValues} is not modelled`);
    }
  }

  private check(x: Expressions, expr: string, old: Item | undefined, onFailure: string | undefined): void {
    if (x.evaluate(expr, old ?? {})) return;
    throw new FakeDynamoError('ConditionalCheckFailedException', 'The conditional request failed', 400, onFailure === 'ALL_OLD' && old ? structuredClone(old) : undefined);
  }
}

// ---- expressions ----

type Token = { t: 'name' | 'value' | 'word' | 'op' | '(' | ')' | ','; v: string };

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|(<>|<=|>=|=|<|>|\+|-)|(\()|(\))|(,)|([A-Za-z_][A-Za-z0-9_]*))/y;
  let at = 0;
  while (at < s.length) {
    if (/^\s*$/.test(s.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) throw validation(`Invalid expression: Syntax error; token: "${s.slice(at).trim().split(/\s/)[0]}", near: "${s.slice(at, at + 20)}"`);
    at = re.lastIndex;
    if (m[1]) out.push({ t: 'name', v: m[1] });
    else if (m[2]) out.push({ t: 'value', v: m[2] });
    else if (m[3]) out.push({ t: 'op', v: m[3] });
    else if (m[4]) out.push({ t: '(', v: '(' });
    else if (m[5]) out.push({ t: ')', v: ')' });
    else if (m[6]) out.push({ t: ',', v: ',' });
    else out.push({ t: 'word', v: m[7]! });
  }
  return out;
}

class Expressions {
  private readonly usedNames = new Set<string>();
  private readonly usedValues = new Set<string>();

  constructor(
    private readonly names: Record<string, string> | undefined,
    private readonly values: Record<string, AttributeValue> | undefined,
  ) {
    if (names && Object.keys(names).length === 0) throw validation('ExpressionAttributeNames must not be empty');
    if (values && Object.keys(values).length === 0) throw validation('ExpressionAttributeValues must not be empty');
  }

  assertAllUsed(): void {
    const names = Object.keys(this.names ?? {}).filter((n) => !this.usedNames.has(n));
    if (names.length) throw validation(`Value provided in ExpressionAttributeNames unused in expressions: keys: {${names.join(', ')}}`);
    const values = Object.keys(this.values ?? {}).filter((v) => !this.usedValues.has(v));
    if (values.length) throw validation(`Value provided in ExpressionAttributeValues unused in expressions: keys: {${values.join(', ')}}`);
  }

  private name(tok: Token | undefined): string {
    if (tok?.t === 'word') throw validation(`fake DynamoDB: use a #placeholder for the attribute name ${tok.v}`);
    if (tok?.t !== 'name') throw validation(`Invalid expression: expected an attribute name, got ${tok?.v ?? 'the end'}`);
    const n = this.names?.[tok.v];
    if (n === undefined) throw validation(`An expression attribute name used in the document path is not defined; attribute name: ${tok.v}`);
    this.usedNames.add(tok.v);
    return n;
  }

  private value(tok: Token): AttributeValue {
    const v = this.values?.[tok.v];
    if (v === undefined) throw validation(`An expression attribute value used in expression is not defined; attribute value: ${tok.v}`);
    this.usedValues.add(tok.v);
    return v;
  }

  /** ConditionExpression against `item` (an empty object when there is none). */
  evaluate(expr: string, item: Item): boolean {
    const toks = tokenize(expr);
    let i = 0;
    const peekWord = (w: string) => toks[i]?.t === 'word' && toks[i]!.v.toUpperCase() === w;
    const operand = (): AttributeValue | undefined => {
      const tok = toks[i++];
      if (tok?.t === 'value') return this.value(tok);
      return item[this.name(tok)];
    };
    const primary = (): boolean => {
      if (toks[i]?.t === '(') {
        i++;
        const v = or();
        if (toks[i++]?.t !== ')') throw validation('Invalid expression: expected )');
        return v;
      }
      if (toks[i]?.t === 'word' && toks[i + 1]?.t === '(') {
        const fn = toks[i]!.v;
        i += 2;
        const path = this.name(toks[i++]);
        if (toks[i++]?.t !== ')') throw validation(`Invalid expression: ${fn} takes one path`);
        if (fn === 'attribute_exists') return item[path] !== undefined;
        if (fn === 'attribute_not_exists') return item[path] === undefined;
        throw validation(`fake DynamoDB: function ${fn} is not modelled`);
      }
      const a = operand();
      const op = toks[i++];
      if (op?.t !== 'op' || op.v === '+' || op.v === '-') throw validation(`Invalid expression: expected a comparator, got ${op?.v ?? 'the end'}`);
      const b = operand();
      return compare(a, op.v, b);
    };
    const not = (): boolean => {
      if (peekWord('NOT')) {
        i++;
        return !not();
      }
      return primary();
    };
    const and = (): boolean => {
      let v = not();
      while (peekWord('AND')) {
        i++;
        const r = not(); // evaluated either way: every placeholder counts as used, as in DynamoDB
        v = v && r;
      }
      return v;
    };
    const or = (): boolean => {
      let v = and();
      while (peekWord('OR')) {
        i++;
        const r = and();
        v = v || r;
      }
      return v;
    };
    const result = or();
    if (i !== toks.length) throw validation(`Invalid ConditionExpression: Syntax error; token: "${toks[i]!.v}"`);
    return result;
  }

  /** `SET a = v, b = if_not_exists(b, :z) + :one` → the new values, computed against `item`. */
  parseSet(expr: string, item: Item): Array<[string, AttributeValue]> {
    const toks = tokenize(expr);
    let i = 0;
    if (!(toks[i]?.t === 'word' && toks[i]!.v.toUpperCase() === 'SET')) throw validation('fake DynamoDB: only SET update expressions are modelled');
    i++;
    const term = (): AttributeValue | undefined => {
      const tok = toks[i];
      if (tok?.t === 'word' && tok.v === 'if_not_exists' && toks[i + 1]?.t === '(') {
        i += 2;
        const path = this.name(toks[i++]);
        if (toks[i++]?.t !== ',') throw validation('Invalid UpdateExpression: if_not_exists takes a path and a value');
        const fallback = term();
        if (toks[i++]?.t !== ')') throw validation('Invalid UpdateExpression: expected )');
        return item[path] ?? fallback;
      }
      i++;
      if (tok?.t === 'value') return this.value(tok);
      return item[this.name(tok)];
    };
    const out: Array<[string, AttributeValue]> = [];
    const seen = new Set<string>();
    for (;;) {
      const target = this.name(toks[i++]);
      if (seen.has(target)) throw validation(`Invalid UpdateExpression: Two document paths overlap with each other; ${target}`);
      seen.add(target);
      if (toks[i++]?.v !== '=') throw validation('Invalid UpdateExpression: expected =');
      let v = term();
      while (toks[i]?.t === 'op' && (toks[i]!.v === '+' || toks[i]!.v === '-')) {
        const op = toks[i++]!.v;
        const r = term();
        if (v?.N === undefined || r?.N === undefined) throw validation('An operand in the update expression has an incorrect data type');
        v = { N: String(op === '+' ? Number(v.N) + Number(r.N) : Number(v.N) - Number(r.N)) };
      }
      if (v === undefined) throw validation('The provided expression refers to an attribute that does not exist in the item');
      out.push([target, v]);
      if (toks[i]?.t !== ',') break;
      i++;
    }
    if (i !== toks.length) throw validation(`Invalid UpdateExpression: Syntax error; token: "${toks[i]!.v}"`);
    return out;
  }
}

/** DynamoDB compares N as numbers and S as strings. A comparison with a missing attribute is false (so an
 *  expired-or-missing test needs attribute_not_exists); values of different types are only `<>`. */
function compare(a: AttributeValue | undefined, op: string, b: AttributeValue | undefined): boolean {
  if (!a || !b) return false;
  let x: number | string;
  let y: number | string;
  if (a.N !== undefined && b.N !== undefined) [x, y] = [Number(a.N), Number(b.N)];
  else if (a.S !== undefined && b.S !== undefined) [x, y] = [a.S, b.S];
  else if (a.BOOL !== undefined && b.BOOL !== undefined && (op === '=' || op === '<>')) return (a.BOOL === b.BOOL) === (op === '=');
  else return op === '<>';
  switch (op) {
    case '=':
      return x === y;
    case '<>':
      return x !== y;
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
  return false;
}
