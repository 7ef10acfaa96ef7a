// The ECR stand-in: Debian's `docker-registry` (the CNCF distribution registry) in the subnet's namespace,
// plain HTTP on port 80, with htpasswd basic auth for one user, `AWS` (ECR's user name), whose password is
// made per test. The mocked ECR hands that login to the coordinator, which hands it to the job, exactly as a
// GetAuthorizationToken login would travel.
//
// Reached:
//   - from the VMs at 10.0.2.2:80 (QEMU's gateway is the namespace's loopback); the job's executor config maps
//     the ECR host name to 10.0.2.2 (docker.extraHosts) and the DinD service trusts it over plain HTTP
//     (--insecure-registry): ECR itself is HTTPS on 443, which only AWS can show;
//   - from the host at <serviceIp>:80, and through `hostProxy()` at 127.0.0.1:<port>, which the host's Docker
//     treats as an insecure registry by default (for pulling the pushed image back).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import type { Subnet } from './subnet.js';

export interface Registry {
  user: string;
  password: string;
  /** http://<serviceIp>:80 (from the host). */
  url: string;
  pid: number;
  log(): string;
  /** A TCP proxy 127.0.0.1:<port> → the registry; returns "127.0.0.1:<port>". */
  hostProxy(): Promise<string>;
  stop(): Promise<void>;
}

export async function startRegistry(subnet: Subnet, dir: string): Promise<Registry> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const user = 'AWS';
  const password = `vm${randomBytes(18).toString('base64url')}`;
  const hash = spawnSync('htpasswd', ['-B', '-i', '-n', user], { input: password, encoding: 'utf8' });
  if (hash.error || hash.status !== 0) throw new Error(`htpasswd (apache2-utils) failed: ${hash.error?.message ?? hash.stderr}`);
  writeFileSync(join(dir, 'htpasswd'), hash.stdout, { mode: 0o600 });
  writeFileSync(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: info, formatter: text }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      'http:',
      '  addr: 0.0.0.0:80',
      `  secret: ${randomBytes(16).toString('hex')}`,
      'auth:',
      '  htpasswd:',
      '    realm: fleetrunner-vm-ecr',
      `    path: ${join(dir, 'htpasswd')}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const logFile = join(dir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const [cmd, ...args] = subnet.exec(['docker-registry', 'serve', join(dir, 'config.yml')]);
  const child: ChildProcess = spawn(cmd!, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  child.on('error', () => undefined);
  const url = `http://${subnet.serviceIp}:80`;
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const status = await fetch(`${url}/v2/`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 401) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the registry did not answer on ${url} (last status ${status}): ${log().slice(-1500)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const proxies: Server[] = [];
  const sockets = new Set<Socket>();
  return {
    user,
    password,
    url,
    pid: child.pid!,
    log,
    hostProxy: async () => {
      const server = createServer((socket) => {
        const upstream = connect(80, subnet.serviceIp);
        for (const s of [socket, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
        }
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      proxies.push(server);
      const address = server.address();
      return `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    },
    stop: async () => {
      for (const p of proxies) p.close();
      for (const s of sockets) s.destroy();
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
