// The DynamoDB lease store through the real SDK and real HTTP (DynamoDB's JSON 1.0 protocol) against the fake
// DynamoDB served on loopback, as the e2e test's coordinators use it: serialisation of the conditional
// UpdateItem, ConditionalCheckFailedException with the item, and error codes as the SDK parses them.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbLeaseStore, parseLeaseItem } from '../../../src/providers/aws/dynamodb-lease.js';
import { FakeDynamoDb } from '../../helpers/fake-dynamodb.js';

const fake = new FakeDynamoDb();
let client: DynamoDBClient;

beforeAll(async () => {
  fake.createTable('leases');
  const endpoint = await fake.listen();
  client = new DynamoDBClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' }, maxAttempts: 1 });
});
afterAll(async () => {
  client.destroy();
  await fake.close();
});

const w = (holder: string, now: number) => ({ holder, owner: `task-${holder}`, now, expiresAt: now + 30_000 });

describe('DynamoDB lease over HTTP', () => {
  it('claims, refuses with the holder named, renews with fencing, and releases', async () => {
    const store = new DynamoDbLeaseStore({ client, table: 'leases', key: 'fleet-a' });
    expect(await store.acquire(w('a', 1_000))).toEqual({ kind: 'held', version: 1, expiresAt: 31_000 });
    expect(await store.acquire(w('b', 2_000))).toEqual({ kind: 'busy', current: { holder: 'a', owner: 'task-a', expiresAt: 31_000, version: 1 } });
    expect(await store.renew({ ...w('a', 10_000), version: 1 })).toEqual({ kind: 'held', version: 1, expiresAt: 40_000 });
    expect(await store.acquire(w('b', 40_001))).toMatchObject({ kind: 'held', version: 2 });
    expect(await store.renew({ ...w('a', 41_000), version: 1 })).toMatchObject({ kind: 'busy', current: { holder: 'b', version: 2 } });
    await store.release({ holder: 'b', version: 2 });
    expect(parseLeaseItem(fake.item('leases', 'fleet-a'))).toMatchObject({ holder: 'b', expiresAt: 0, version: 2 });
    expect(fake.calls.GetItem).toBe(0); // the failed conditions carried the item
  });

  it('errors arrive with DynamoDB codes the SDK understands', async () => {
    const store = new DynamoDbLeaseStore({ client, table: 'leases', key: 'fleet-b' });
    fake.failNext('UpdateItem', 1, 'ProvisionedThroughputExceededException');
    await expect(store.acquire(w('a', 0))).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    const missing = new DynamoDbLeaseStore({ client, table: 'missing', key: 'fleet-b' });
    await expect(missing.acquire(w('a', 0))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});
