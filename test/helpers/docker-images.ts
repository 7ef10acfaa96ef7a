// Test images for the docker style, made with `docker import` from a root filesystem assembled from
// busybox-static (no registry is reachable from the test machine). Names live under `fr-test/`, which no
// real image uses; they are left in place after the tests (a few MB, rebuilt only when missing, and the
// tag carries a version to bump when the contents change).
//
//   fr-test/busybox:1     sh only (busybox ash, no bash anywhere), /etc/os-release ID=fleetrunner-test,
//                         a marker file /fleetrunner-image-marker
//   fr-test/httpd:2       the same plus /www/index.html, EXPOSE 80 8081 (like dind's 2375/2376, only one
//                         port listens), CMD busybox httpd on port 80
//   fr-test/entrypoint:1  ENTRYPOINT /entrypoint.sh, which exports ENTRYPOINT_SAW="$ENTRY_INPUT" and
//                         execs its arguments (the shape of docker:cli's entrypoint)

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUSYBOX_IMAGE = 'fr-test/busybox:1';
export const HTTPD_IMAGE = 'fr-test/httpd:2';
export const ENTRYPOINT_IMAGE = 'fr-test/entrypoint:1';
/** Never built: for "image not present" cases. */
export const MISSING_IMAGE = 'fr-test/missing:1';
export const IMAGE_MARKER = 'fleetrunner-test-image-marker';

const BUSYBOX = '/bin/busybox';
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function dockerOk(...args: string[]): boolean {
  return spawnSync('docker', args, { stdio: 'ignore' }).status === 0;
}

/** Starts dockerd when it is not answering (scripts/start-dockerd.sh); throws with the reason otherwise. */
export function ensureDocker(): void {
  // The script returns at once when the daemon answers and its default bridge exists.
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'start-dockerd.sh')], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`no Docker daemon for the docker-style tests (apt-get install docker.io busybox-static; scripts/start-dockerd.sh): ${r.stderr}`);
  }
}

function busyboxPath(): string {
  for (const p of [BUSYBOX, '/usr/bin/busybox']) if (existsSync(p)) return p;
  throw new Error('busybox is not installed (apt-get install busybox-static)');
}

function rootfs(files: Record<string, { text: string; mode?: number }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'fr-rootfs-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const d of ['etc', 'tmp', 'root', 'www', 'usr/bin', 'var/run']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync(busyboxPath(), join(bin, 'busybox'));
  chmodSync(join(bin, 'busybox'), 0o755);
  const applets = execFileSync(busyboxPath(), ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    // No bash in these images: the bash-less path of the shell detection must be the one taken.
    if (a === 'busybox' || a === 'bash') continue;
    symlinkSync('busybox', join(bin, a));
  }
  const base: Record<string, { text: string; mode?: number }> = {
    'etc/os-release': { text: 'ID=fleetrunner-test\nNAME="fleetrunner test image"\n' },
    'etc/passwd': { text: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' },
    'etc/group': { text: 'root:x:0:\nnogroup:x:65534:\n' },
    'fleetrunner-image-marker': { text: `${IMAGE_MARKER}\n` },
    ...files,
  };
  for (const [path, f] of Object.entries(base)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), f.text, { mode: f.mode ?? 0o644 });
  }
  return dir;
}

function importImage(tag: string, changes: string[], files: Record<string, { text: string; mode?: number }> = {}): void {
  if (dockerOk('image', 'inspect', tag)) return;
  const dir = rootfs(files);
  try {
    const tar = spawnSync('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 64 * 1024 * 1024 });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    const args = ['import'];
    for (const c of ['ENV PATH=/bin:/usr/bin', ...changes]) args.push('-c', c);
    args.push('-', tag);
    const r = spawnSync('docker', args, { input: tar.stdout, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker import ${tag} failed: ${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds the test images that are missing. Idempotent and cheap when they exist. */
export function ensureTestImages(): void {
  ensureDocker();
  importImage(BUSYBOX_IMAGE, ['CMD ["/bin/sh"]']);
  importImage(HTTPD_IMAGE, ['EXPOSE 80 8081', 'CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]'], {
    'www/index.html': { text: 'hello from the service\n' },
  });
  importImage(ENTRYPOINT_IMAGE, ['ENTRYPOINT ["/entrypoint.sh"]', 'CMD ["/bin/sh"]'], {
    'entrypoint.sh': { text: '#!/bin/sh\nexport ENTRYPOINT_SAW="entrypoint-saw:${ENTRY_INPUT:-nothing}"\nexec "$@"\n', mode: 0o755 },
  });
  if (dockerOk('image', 'inspect', MISSING_IMAGE)) docker('image', 'rm', '-f', MISSING_IMAGE);
}

/** Containers, networks and volumes carrying a job's label (all should be gone after the job). */
export function jobResources(jobId: number): { containers: string[]; networks: string[]; volumes: string[] } {
  const f = `label=fleetrunner.job=${jobId}`;
  const lines = (s: string) => s.split('\n').filter(Boolean);
  return {
    containers: lines(docker('ps', '-aq', '--filter', f)),
    networks: lines(docker('network', 'ls', '-q', '--filter', f)),
    volumes: lines(docker('volume', 'ls', '-q', '--filter', f)),
  };
}

/** Running containers of a job. */
export function runningContainers(jobId: number): string[] {
  return docker('ps', '-q', '--filter', `label=fleetrunner.job=${jobId}`).split('\n').filter(Boolean);
}
