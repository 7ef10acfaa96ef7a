// Optional network isolation: a machine gets its own network namespace joined to the host by a veth pair
// on a /30 out of 10.213.0.0/16. Only interfaces we create are touched.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';

import type { NamespaceRecord } from './machine-dir.js';

const run = promisify(execFile);
const SUBNETS = 16384; // /30s in a /16

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('ip', args, { timeout: 10_000 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

function subnetAddresses(index: number): { host: string; ns: string } {
  const base = index * 4;
  const third = Math.floor(base / 256);
  const fourth = base % 256;
  return { host: `10.213.${third}.${fourth + 1}`, ns: `10.213.${third}.${fourth + 2}` };
}

/** Subnet indexes already in use on this host (by any fleet), from the host's interface addresses. */
async function subnetsInUse(): Promise<Set<number>> {
  const out = await ip('-4', '-o', 'addr', 'show');
  const used = new Set<number>();
  for (const m of out.matchAll(/inet 10\.213\.(\d+)\.(\d+)\//g)) {
    used.add(Math.floor((Number(m[1]) * 256 + Number(m[2])) / 4));
  }
  return used;
}

/** True when this host lets us create namespaces and veth pairs (root with CAP_NET_ADMIN). */
export async function namespacesSupported(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const probe = `frprobe${process.pid}`;
  try {
    await ip('netns', 'add', probe);
    await ip('netns', 'del', probe);
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** Creates namespace + veth pair; undoes what it did when a step fails. `reserved` holds indexes we hand out. */
export async function createNamespace(machineId: string, reserved: Set<number>): Promise<NamespaceRecord> {
  const tag = createHash('sha256').update(machineId).digest('hex').slice(0, 10);
  const name = `fr-${machineId}`;
  const hostIf = `frh${tag}`;
  const nsIf = `frn${tag}`;
  const inUse = await subnetsInUse();
  let subnet = -1;
  for (let tries = 0; tries < 64 && subnet < 0; tries++) {
    const candidate = Math.floor(Math.random() * SUBNETS);
    if (!inUse.has(candidate) && !reserved.has(candidate)) subnet = candidate;
  }
  if (subnet < 0) throw new Error('no free /30 left in 10.213.0.0/16');
  reserved.add(subnet);
  const { host, ns } = subnetAddresses(subnet);

  const undo: Array<() => Promise<unknown>> = [];
  try {
    await ip('netns', 'add', name);
    undo.push(() => ip('netns', 'del', name));
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    undo.push(() => ip('link', 'del', hostIf));
    await ip('link', 'set', nsIf, 'netns', name);
    await ip('addr', 'add', `${host}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'addr', 'add', `${ns}/30`, 'dev', nsIf);
    await ip('-n', name, 'link', 'set', nsIf, 'up');
  } catch (e) {
    for (const step of undo.reverse()) await step().catch(() => undefined);
    reserved.delete(subnet);
    throw e;
  }
  return { name, hostIf, hostAddr: host, nsAddr: ns, subnet };
}

/** Pids of every process inside the namespace (empty when it is gone). */
export async function namespacePids(name: string): Promise<number[]> {
  try {
    const out = await ip('netns', 'pids', name);
    return out
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** Deletes the namespace and the host end of the veth pair; missing pieces are fine. */
export async function deleteNamespace(rec: NamespaceRecord): Promise<void> {
  await ip('link', 'del', rec.hostIf).catch(() => undefined);
  const list = await ip('netns', 'list');
  if (list.split('\n').some((l) => l.split(' ')[0] === rec.name)) await ip('netns', 'del', rec.name);
}
