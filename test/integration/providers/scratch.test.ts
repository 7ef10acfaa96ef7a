import { test, expect } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvider } from '../../../src/providers/local/index.js';
import { connectSsh } from '../../../src/executors/ssh-connection.js';

test('scratch', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fr-scratch-'));
  const p = new LocalProvider({ fleet: 'x', root });
  const r = await p.create(1, { fleet: 'f', executor: 'e', coordinator: 'c' });
  console.log(r.errors);
  const m = r.machines[0]!;
  const info = await p.waitReady(m);
  const conn = await connectSsh(info, { connectTimeoutMs: 5000 });
  const ch = await conn.exec('echo hi; env | grep -E "FLEET|TMPDIR"; id');
  let out = '';
  ch.on('data', (d: Buffer) => (out += d));
  ch.stderr.on('data', (d: Buffer) => (out += d));
  await new Promise((r) => ch.on('close', r));
  console.log(out);
  conn.close();
  console.log(await p.list({ fleet: 'f' }));
  console.log(await p.terminate([m.id]));
  console.log(await p.list({ fleet: 'f' }));
}, 30000);
