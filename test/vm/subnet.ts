// The EC2 stand-in's "subnet": a network namespace joined to the host by a veth pair, 10.232.X.0/24.
//
//   host (coordinator, test)  10.232.X.1  ── veth ──  10.232.X.2 (the registry)      namespace frvm-<pid>-<hex>
//                                                     10.232.X.(10+n) (instance n: QEMU forwards :22 to the VM)
//
// Each VM is a QEMU process in the namespace with user-mode networking: its SSH port is forwarded from
// its own address in the namespace, so the coordinator connects to the instance's PrivateIpAddress on port
// 22, as on AWS, with no port seam and nothing listening on the host. The guest reaches the namespace's
// loopback at 10.0.2.2 (QEMU's gateway address), which is where the registry answers. The namespace keeps
// all of it off the host's own ports. Needs root and iproute2.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export interface Subnet {
  /** Network namespace name. */
  ns: string;
  /** The host's address in the subnet (the coordinator's, as the VMs see it). */
  hostIp: string;
  /** The namespace's first address: the registry listens here (and on the namespace's loopback). */
  serviceIp: string;
  /** The address of the n-th instance (n from 1). */
  instanceIp(n: number): string;
  /** Adds an instance address to the namespace side (before QEMU forwards from it). */
  addAddress(ip: string): void;
  /** argv prefix that runs a command in the namespace. */
  exec(argv: readonly string[]): string[];
  /** Removes the namespace (and with it the veth pair). Processes in it must be stopped first. */
  destroy(): void;
}

const PREFIX = 'frvm-';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces of this harness whose creating process is gone: their processes are killed, they are deleted. */
export function removeStaleSubnets(log: (l: string) => void = () => undefined): void {
  let names: string[] = [];
  try {
    names = ip('netns', 'list')
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const ns of names) {
    const pid = Number(/^frvm-(\d+)-/.exec(ns)?.[1] ?? 0);
    if (!pid || alive(pid)) continue;
    killAll(ns);
    try {
      ip('netns', 'delete', ns);
      log(`removed the stale VM subnet ${ns} of process ${pid}`);
    } catch {
      // gone meanwhile
    }
  }
}

function killAll(ns: string): void {
  let pids: number[] = [];
  try {
    pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Used third octets of 10.232.0.0/16 on this host. */
function usedOctets(): Set<number> {
  const used = new Set<number>();
  for (const m of ip('-4', '-o', 'addr', 'show').matchAll(/inet 10\.232\.(\d+)\./g)) used.add(Number(m[1]));
  for (const m of ip('-4', 'route', 'show').matchAll(/^10\.232\.(\d+)\./gm)) used.add(Number(m[1]));
  return used;
}

export function createSubnet(): Subnet {
  removeStaleSubnets();
  const used = usedOctets();
  const free = Array.from({ length: 254 }, (_, i) => i + 1).filter((x) => !used.has(x));
  if (free.length === 0) throw new Error('no free 10.232.X.0/24 subnet on this host');
  const x = free[randomBytes(1)[0]! % free.length]!;
  const hex = randomBytes(3).toString('hex');
  const ns = `${PREFIX}${process.pid}-${hex}`;
  const hostIf = `fr${hex}h`;
  const nsIf = `fr${hex}n`;
  const hostIp = `10.232.${x}.1`;
  const serviceIp = `10.232.${x}.2`;
  ip('netns', 'add', ns);
  try {
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf, 'netns', ns);
    ip('addr', 'add', `${hostIp}/24`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${serviceIp}/24`, 'dev', nsIf);
    ip('-n', ns, 'link', 'set', nsIf, 'up');
  } catch (e) {
    ip('netns', 'delete', ns);
    throw e;
  }
  let destroyed = false;
  return {
    ns,
    hostIp,
    serviceIp,
    instanceIp: (n) => `10.232.${x}.${10 + (n % 240)}`,
    addAddress: (addr) => {
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', nsIf);
    },
    exec: (argv) => ['ip', 'netns', 'exec', ns, ...argv],
    destroy: () => {
      if (destroyed) return;
      destroyed = true;
      killAll(ns);
      try {
        ip('netns', 'delete', ns);
      } catch {
        // already gone
      }
    },
  };
}

/** True when the namespace `ns` exists. */
export function subnetExists(ns: string): boolean {
  try {
    return ip('netns', 'list').split('\n').some((l) => l.split(' ')[0] === ns);
  } catch {
    return false;
  }
}
