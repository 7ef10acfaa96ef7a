// The DynamoDB lease against the stateful fake DynamoDB at the SDK boundary, on stepped clocks: the store's
// conditional writes on their own, then LeaseKeeper + store as a coordinator uses them. No test sleeps.
import { afterEach, describe, expect, it } from 'vitest';
import type { HeldLease } from '../../../src/core/lease.js';
import type { Logger } from '../../../src/core/logger.js';
import { DynamoDbLeaseStore, parseLeaseItem } from '../../../src/providers/aws/dynamodb-lease.js';
import { LeaseKeeper, type LeaseTiming } from '../../../src/runner/lease-keeper.js';
import { FakeDynamoDb } from '../../helpers/fake-dynamodb.js';
import { settle, StepClock } from '../../helpers/step-clock.js';

const TABLE = 'fleetrunner-lease';
const FLEET = 'ci';
const TIMING: LeaseTiming = { durationMs: 30_000, renewIntervalMs: 10_000, maxClockSkewMs: 5_000 };

type Line = { level: string; msg: string; fields: Record<string, unknown> };
function recorder(lines: Line[]): Logger {
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) => void lines.push({ level, msg, fields });
  const l: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => l };
  return l;
}

function setup() {
  const fake = new FakeDynamoDb();
  fake.createTable(TABLE);
  const store = new DynamoDbLeaseStore({ client: fake.client, table: TABLE, key: FLEET });
  const keeper = (id: string, clock: StepClock, lines: Line[] = [], timing: LeaseTiming = TIMING) =>
    new LeaseKeeper({ store, holder: { id, owner: `task-${id}` }, ...timing, clock, logger: recorder(lines) });
  const record = () => parseLeaseItem(fake.item(TABLE, FLEET));
  return { fake, store, keeper, record };
}

const held: HeldLease[] = [];
afterEach(async () => {
  await Promise.all(held.splice(0).map((h) => h.release()));
});
const keep = (h: HeldLease | undefined) => {
  if (h) held.push(h);
  return h;
};

describe('DynamoDbLeaseStore: conditional writes', () => {
  const w = (holder: string, now: number) => ({ holder, owner: `task-${holder}`, now, expiresAt: now + 30_000 });

  it('claims a missing item as version 1, refuses while held, hands it over once expired, and raises the version', async () => {
    const { store, record, fake } = setup();
    expect(await store.acquire(w('a', 1_000))).toEqual({ kind: 'held', version: 1, expiresAt: 31_000 });
    expect(record()).toEqual({ holder: 'a', owner: 'task-a', expiresAt: 31_000, version: 1 });
    expect(await store.acquire(w('b', 31_000))).toEqual({ kind: 'busy', current: { holder: 'a', owner: 'task-a', expiresAt: 31_000, version: 1 } });
    expect(await store.acquire(w('b', 31_001))).toEqual({ kind: 'held', version: 2, expiresAt: 61_001 });
    expect(record()).toMatchObject({ holder: 'b', version: 2 });
    // One UpdateItem per claim: the refused one named the holder without a GetItem.
    expect(fake.calls).toMatchObject({ UpdateItem: 3, GetItem: 0 });
    const input = fake.log[0]!.input as { ConditionExpression: string; UpdateExpression: string };
    expect(input.ConditionExpression).toBe('attribute_not_exists(#pk) OR #expiresAt < :now OR #holder = :me');
    expect(input.UpdateExpression).toContain('#version = if_not_exists(#version, :zero) + :one');
  });

  it('renewal is fenced by holder and version: refused after a takeover, and the successor is untouched', async () => {
    const { store, record } = setup();
    await store.acquire(w('a', 0));
    expect(await store.renew({ ...w('a', 10_000), version: 1 })).toEqual({ kind: 'held', version: 1, expiresAt: 40_000 });
    await store.acquire(w('b', 40_001));
    const after = record();
    expect(await store.renew({ ...w('a', 50_000), version: 1 })).toEqual({ kind: 'busy', current: after });
    await store.release({ holder: 'a', version: 1 });
    expect(record()).toEqual(after);
    // The same holder id with an old version is fenced too (a claim that was retried raised it).
    expect(await store.renew({ ...w('b', 50_000), version: 1 })).toMatchObject({ kind: 'busy' });
  });

  it('release frees the item for the next claimer at once and keeps the version counting', async () => {
    const { store, record } = setup();
    await store.acquire(w('a', 0));
    await store.release({ holder: 'a', version: 1 });
    expect(record()).toMatchObject({ holder: 'a', expiresAt: 0, version: 1 });
    expect(await store.acquire(w('b', 1_000))).toMatchObject({ kind: 'held', version: 2 });
  });

  it('reads the holder with GetItem when DynamoDB returned no item on the failed condition', async () => {
    const { store, fake } = setup();
    await store.acquire(w('a', 0));
    const noItem = new DynamoDbLeaseStore({
      client: { send: async (cmd: { input: unknown; constructor: { name: string } }) => {
        if (cmd.constructor.name === 'UpdateItemCommand') throw Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });
        return fake.client.send(cmd as never);
      } } as never,
      table: TABLE,
      key: FLEET,
    });
    expect(await noItem.acquire(w('b', 1_000))).toMatchObject({ kind: 'busy', current: { holder: 'a', version: 1 } });
    expect(fake.calls.GetItem).toBe(1);
  });

  it('throttling and a missing table are errors for the caller to retry, not answers', async () => {
    const { store, fake } = setup();
    fake.failNext('UpdateItem', 1, 'ProvisionedThroughputExceededException');
    await expect(store.acquire(w('a', 0))).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    const missing = new DynamoDbLeaseStore({ client: fake.client, table: 'nope', key: FLEET });
    await expect(missing.acquire(w('a', 0))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

describe('LeaseKeeper over DynamoDB', () => {
  it('acquires a free lease at once and renews it every renewInterval', async () => {
    const { keeper, record, fake } = setup();
    const clock = new StepClock();
    const t0 = clock.now();
    const a = keep(await keeper('a', clock).acquire(new AbortController().signal))!;
    expect(a.version).toBe(1);
    expect(a.held()).toBe(true);
    expect(record()!.expiresAt).toBe(t0 + 30_000);
    await clock.advance(10_000);
    expect(record()!.expiresAt).toBe(t0 + 40_000);
    await clock.advance(50_000);
    expect(record()!.expiresAt).toBe(t0 + 90_000);
    expect(a.held()).toBe(true);
    expect(fake.calls.UpdateItem).toBe(7);
  });

  it('a second coordinator waits while the lease is renewed, logging who holds it and until when', async () => {
    const { keeper } = setup();
    const clock = new StepClock();
    const a = keep(await keeper('a', clock).acquire(new AbortController().signal))!;
    const lines: Line[] = [];
    let b: HeldLease | undefined;
    void keeper('b', clock, lines).acquire(new AbortController().signal).then((h) => (b = keep(h)));
    await clock.advance(120_000);
    expect(b).toBeUndefined();
    expect(a.held()).toBe(true);
    const waiting = lines.filter((l) => l.msg.startsWith('waiting for the lease held by task-a until '));
    expect(waiting).toHaveLength(1); // once per holder, not once per poll
    expect(waiting[0]!.msg).toBe(`waiting for the lease held by task-a until ${new Date(clock.now() - 120_000 + 30_000).toISOString()}`);
  });

  it('a clean release hands over within one renew interval', async () => {
    const { keeper, record } = setup();
    const clock = new StepClock();
    const a = (await keeper('a', clock).acquire(new AbortController().signal))!;
    let b: HeldLease | undefined;
    void keeper('b', clock).acquire(new AbortController().signal).then((h) => (b = keep(h)));
    await clock.advance(3_000);
    await a.release();
    expect(a.held()).toBe(false);
    expect(a.lost.aborted).toBe(false);
    await clock.advance(10_000);
    expect(b?.version).toBe(2);
    expect(record()).toMatchObject({ holder: 'b', version: 2 });
  });

  it('a holder that cannot renew stands down before its record expires, and only then does the successor take over', async () => {
    const { keeper, fake } = setup();
    const clock = new StepClock();
    const start = clock.now();
    const a = keep(await keeper('a', clock).acquire(new AbortController().signal))!;
    let b: HeldLease | undefined;
    void keeper('b', clock).acquire(new AbortController().signal).then((h) => (b = keep(h)));
    await clock.advance(1_000);
    fake.hangNext('UpdateItem', 1_000); // the network swallows everything from now on
    let lostAt: number | undefined;
    a.lost.addEventListener('abort', () => (lostAt = clock.now()));
    for (let t = 0; t < 40_000; t += 500) {
      await clock.advance(500);
      expect(a.held() && b?.held()).toBeFalsy();
    }
    expect(lostAt).toBe(start + 25_000); // duration - maxClockSkew after the last write was sent
    expect(String((a.lost.reason as Error).message)).toMatch(/not renewed within 25s \(last error: the lease store did not answer within 10s\)/);
  });

  it('takes over after the record expires, and retries through throttling', async () => {
    const { keeper, fake, record } = setup();
    const clock = new StepClock();
    const start = clock.now();
    // A holder that crashed (SIGKILL): its record stays until it expires.
    fake.putRaw(TABLE, { pk: { S: FLEET }, holder: { S: 'dead' }, owner: { S: 'task-dead' }, expiresAt: { N: String(start + 20_000) }, version: { N: '7' } });
    fake.failNext('UpdateItem', 2);
    const lines: Line[] = [];
    let b: HeldLease | undefined;
    void keeper('b', clock, lines).acquire(new AbortController().signal).then((h) => (b = keep(h)));
    await clock.advance(19_000);
    expect(b).toBeUndefined();
    await clock.advance(2_000);
    expect(b?.version).toBe(8);
    expect(record()).toMatchObject({ holder: 'b', version: 8 });
    expect(lines.filter((l) => l.msg === 'could not reach the lease store; trying again')).toHaveLength(2);
  });

  it('a paused holder that wakes after a takeover has lost: it never renews or releases over the successor', async () => {
    const { keeper, record, fake } = setup();
    const clockA = new StepClock();
    const clockB = new StepClock(clockA.now());
    const a = keep(await keeper('a', clockA).acquire(new AbortController().signal))!;
    // A is frozen (its clock does not move, its timers do not fire); B's time goes on.
    let b: HeldLease | undefined;
    void keeper('b', clockB).acquire(new AbortController().signal).then((h) => (b = keep(h)));
    await clockB.advance(31_000);
    expect(b?.version).toBe(2);
    const successor = record();
    const updatesBefore = fake.calls.UpdateItem;
    // A wakes up 31 s later: every timer fires at once. It knows it has lost before asking anything.
    await clockA.jump(31_000);
    expect(a.held()).toBe(false);
    expect(a.lost.aborted).toBe(true);
    // At most a conditional release went out, and DynamoDB refused it: B's record is as B wrote it.
    expect(fake.calls.UpdateItem - updatesBefore).toBeLessThanOrEqual(1);
    expect(fake.log.slice(-1)[0]!.error).toBe('ConditionalCheckFailedException');
    await clockB.advance(0);
    expect(record()).toMatchObject({ holder: 'b', version: 2 });
    expect(record()!.expiresAt).toBeGreaterThanOrEqual(successor!.expiresAt);
    expect(b!.held()).toBe(true);
  });

  it('a renewal that finds another holder loses at once (fencing), naming the successor', async () => {
    const { keeper, fake } = setup();
    const clock = new StepClock();
    const a = keep(await keeper('a', clock).acquire(new AbortController().signal))!;
    // Someone whose clock is far ahead took it: DynamoDB now says so.
    fake.putRaw(TABLE, { pk: { S: FLEET }, holder: { S: 'x' }, owner: { S: 'task-x' }, expiresAt: { N: String(clock.now() + 60_000) }, version: { N: '2' } });
    await clock.advance(10_000);
    expect(a.lost.aborted).toBe(true);
    expect(a.held()).toBe(false);
    expect((a.lost.reason as Error).message).toBe('task-x took it over (version 2)');
    expect(parseLeaseItem(fake.item(TABLE, FLEET))).toMatchObject({ holder: 'x', version: 2 });
  });

  it('a renewal that fails once is retried within the deadline and the lease stays held', async () => {
    const { keeper, fake } = setup();
    const clock = new StepClock();
    const lines: Line[] = [];
    const a = keep(await keeper('a', clock, lines).acquire(new AbortController().signal))!;
    fake.failNext('UpdateItem', 3, 'ThrottlingException');
    await clock.advance(60_000);
    expect(a.lost.aborted).toBe(false);
    expect(a.held()).toBe(true);
    expect(lines.filter((l) => l.msg === 'could not renew the lease; trying again')).toHaveLength(3);
  });

  it('waiting ends promptly when the signal aborts (SIGTERM while waiting)', async () => {
    const { keeper } = setup();
    const clock = new StepClock();
    keep(await keeper('a', clock).acquire(new AbortController().signal));
    const stop = new AbortController();
    let result: HeldLease | undefined | 'pending' = 'pending';
    void keeper('b', clock).acquire(stop.signal).then((h) => (result = h));
    await clock.advance(5_000);
    stop.abort();
    await settle();
    expect(result).toBeUndefined();
  });
});
