// The fleet's lease as one DynamoDB item (partition key `pk` = the fleet name), written only with
// conditional UpdateItem calls, which DynamoDB evaluates atomically against the item as it is:
//
//   claim    SET holder, owner, expiresAt, version = version + 1
//            IF attribute_not_exists(pk) OR expiresAt < :now OR holder = :me
//   renew    SET expiresAt                   IF holder = :me AND version = :version
//   release  SET expiresAt = 0               IF holder = :me AND version = :version
//
// A claim that loses to a renewal in flight fails (the renewal moved expiresAt first), and a renewal that
// arrives after a takeover fails (holder and version changed): there is no read-then-write window. The item
// is never deleted, so `version` only grows and serves as a fencing token. On a failed condition DynamoDB
// returns the item (ReturnValuesOnConditionCheckFailure), which names the holder for the "waiting" log.
// `:now` is the caller's clock; runner/lease-keeper.ts argues the skew.

import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { LeaseClaim, LeaseRecord, LeaseStore, LeaseWrite } from '../../core/lease.js';

/** The table's partition key (type String). */
export const LEASE_KEY_ATTRIBUTE = 'pk';

const NAMES = { '#pk': LEASE_KEY_ATTRIBUTE, '#holder': 'holder', '#owner': 'owner', '#expiresAt': 'expiresAt', '#version': 'version' };

const n = (v: number): AttributeValue => ({ N: String(v) });
const s = (v: string): AttributeValue => ({ S: v });

/** The lease attributes of an item; undefined when there is no item or it is not a lease record. */
export function parseLeaseItem(item: Record<string, AttributeValue> | undefined): LeaseRecord | undefined {
  if (!item) return undefined;
  const holder = item.holder?.S;
  const expiresAt = Number(item.expiresAt?.N);
  const version = Number(item.version?.N);
  if (holder === undefined || !Number.isFinite(expiresAt) || !Number.isFinite(version)) return undefined;
  return { holder, owner: item.owner?.S ?? holder, expiresAt, version };
}

export interface DynamoDbLeaseStoreOptions {
  client: DynamoDBClient;
  /** Table name or ARN. */
  table: string;
  /** The item's key: the fleet name. */
  key: string;
}

export class DynamoDbLeaseStore implements LeaseStore {
  readonly where: string;

  constructor(private readonly o: DynamoDbLeaseStoreOptions) {
    this.where = `dynamodb:${o.table}/${o.key}`;
  }

  async acquire(w: LeaseWrite, signal?: AbortSignal): Promise<LeaseClaim> {
    const cmd = new UpdateItemCommand({
      TableName: this.o.table,
      Key: { [LEASE_KEY_ATTRIBUTE]: s(this.o.key) },
      UpdateExpression: 'SET #holder = :me, #owner = :owner, #expiresAt = :expiresAt, #version = if_not_exists(#version, :zero) + :one',
      ConditionExpression: 'attribute_not_exists(#pk) OR #expiresAt < :now OR #holder = :me',
      ExpressionAttributeNames: NAMES,
      ExpressionAttributeValues: { ':me': s(w.holder), ':owner': s(w.owner), ':expiresAt': n(w.expiresAt), ':now': n(w.now), ':zero': n(0), ':one': n(1) },
      ReturnValues: 'ALL_NEW',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    try {
      const out = await this.o.client.send(cmd, { abortSignal: signal });
      const rec = parseLeaseItem(out.Attributes);
      if (!rec) throw new Error(`DynamoDB returned no lease attributes for ${this.where}`);
      return { kind: 'held', version: rec.version, expiresAt: rec.expiresAt };
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      return { kind: 'busy', ...(await this.holderOf(e, signal)) };
    }
  }

  async renew(w: LeaseWrite & { version: number }, signal?: AbortSignal): Promise<LeaseClaim> {
    try {
      await this.conditional('SET #expiresAt = :expiresAt', w.holder, w.version, { ':expiresAt': n(w.expiresAt) }, signal);
      return { kind: 'held', version: w.version, expiresAt: w.expiresAt };
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      return { kind: 'busy', ...(await this.holderOf(e, signal)) };
    }
  }

  async release(w: { holder: string; version: number }, signal?: AbortSignal): Promise<void> {
    try {
      await this.conditional('SET #expiresAt = :zero', w.holder, w.version, { ':zero': n(0) }, signal);
    } catch (e) {
      if (!isConditionFailed(e)) throw e; // someone else's now: nothing to release
    }
  }

  private async conditional(update: string, holder: string, version: number, values: Record<string, AttributeValue>, signal: AbortSignal | undefined): Promise<void> {
    await this.o.client.send(
      new UpdateItemCommand({
        TableName: this.o.table,
        Key: { [LEASE_KEY_ATTRIBUTE]: s(this.o.key) },
        UpdateExpression: update,
        ConditionExpression: '#holder = :me AND #version = :version',
        ExpressionAttributeNames: { '#holder': NAMES['#holder'], '#version': NAMES['#version'], '#expiresAt': NAMES['#expiresAt'] },
        ExpressionAttributeValues: { ':me': s(holder), ':version': n(version), ...values },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      { abortSignal: signal },
    );
  }

  /** The item that failed the condition; read it (consistently) if DynamoDB did not return it. */
  private async holderOf(e: ConditionalCheckFailedException, signal: AbortSignal | undefined): Promise<{ current?: LeaseRecord }> {
    let rec = parseLeaseItem(e.Item);
    if (!rec) {
      const out = await this.o.client.send(new GetItemCommand({ TableName: this.o.table, Key: { [LEASE_KEY_ATTRIBUTE]: s(this.o.key) }, ConsistentRead: true }), { abortSignal: signal });
      rec = parseLeaseItem(out.Item);
    }
    return rec ? { current: rec } : {};
  }
}

function isConditionFailed(e: unknown): e is ConditionalCheckFailedException {
  return e instanceof ConditionalCheckFailedException || (e as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';
}
