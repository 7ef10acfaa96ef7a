#!/usr/bin/env node
// Makes a fresh Debian/Ubuntu machine ready for `npm test` and `npm run demo`: npm packages, then the
// programs that local machines and tests use (sshd, git, curl, zip, unzip, ip). Installs with apt when
// root; otherwise names what to install and fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = (msg) => console.error(`[setup] ${msg}`);

// 1. npm packages (a fresh clone has no node_modules).
const marker = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000)) {
  log('installing npm packages (npm ci)…');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

// 2. System programs: binary → Debian package. `--with-docker` (npm test) adds a Docker engine and a
//    static busybox for the docker-style tests' images and, as root, what the EC2 stand-in VM test
//    (test/e2e/dind-vm.e2e.test.ts) needs when it is asked for (FLEETRUNNER_VM_TEST=1, as .ci/run does):
//    QEMU, the guest image build, the ECR stand-in registry. Without root the test names what is missing.
const withDocker = process.argv.includes('--with-docker');
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const withVm = withDocker && isRoot && process.platform === 'linux' && process.arch === 'x64' && process.env.FLEETRUNNER_VM_TEST === '1';
const needed = [
  ['/usr/sbin/sshd', 'openssh-server'],
  ['git', 'git'],
  ['curl', 'curl'],
  ['zip', 'zip'],
  ['unzip', 'unzip'],
  ['ip', 'iproute2'],
  ['ps', 'procps'],
  ...(withDocker ? [['dockerd', 'docker.io'], ['/bin/busybox', 'busybox-static']] : []),
  ...(withVm
    ? [
        ['qemu-system-x86_64', 'qemu-system-x86'],
        ['qemu-img', 'qemu-utils'],
        ['mmdebstrap', 'mmdebstrap'],
        ['genisoimage', 'genisoimage'],
        ['mkfs.ext4', 'e2fsprogs'],
        ['unshare', 'util-linux'],
        ['docker-registry', 'docker-registry'],
        ['htpasswd', 'apache2-utils'],
      ]
    : []),
];
const have = (bin) => (bin.startsWith('/') ? existsSync(bin) : spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0);
const missing = [...new Set(needed.filter(([bin]) => !have(bin)).map(([, pkg]) => pkg))];
if (missing.length) {
  if (!isRoot || !have('apt-get')) {
    log(`missing programs; please install these packages and run again: ${missing.join(' ')}`);
    log(`  e.g. sudo apt-get install -y ${missing.join(' ')}`);
    process.exit(1);
  }
  log(`installing ${missing.join(' ')} with apt-get…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}

// 3. sshd's privilege-separation directory (normally made by the service unit, which we do not start).
if (typeof process.getuid === 'function' && process.getuid() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });

// 4. A running Docker daemon for the docker-style tests.
if (withDocker) {
  const r = spawnSync('bash', [join(root, 'scripts', 'start-dockerd.sh')], { stdio: 'inherit' });
  if (r.status !== 0) {
    log('could not start dockerd: the docker-style tests need a running Docker engine (see scripts/start-dockerd.sh)');
    process.exit(r.status ?? 1);
  }
}
