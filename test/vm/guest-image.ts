// The guest image of the EC2 stand-in (test/vm/guest/build.sh), built once per machine and cached:
//
//   /var/cache/fleetrunner-vm/<key>/{vmlinuz, initrd.img, disk.raw, manifest.json}
//
// <key> is the first 16 hex digits of a SHA-256 over the name and content of every file in test/vm/guest/,
// so editing the recipe builds a new image, and nothing else does. A build goes to <key>.building-<pid> and
// is renamed into place when complete, so an interrupted build is never used; a lock directory keeps two
// processes from building at once (a lock left by a dead process is taken over). After a successful build,
// the entries of other keys are removed: the cache holds one image (about 1 GB of an 8 GB sparse file).
// FLEETRUNNER_VM_CACHE moves the cache.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { VmStageError, tail } from './stages.js';

export const GUEST_DIR = join(import.meta.dirname, 'guest');
export const DEFAULT_CACHE_ROOT = '/var/cache/fleetrunner-vm';
/** The DinD stand-in's name in the guest's Docker store. */
export const DIND_IMAGE = readFileSync(join(GUEST_DIR, 'dind-image.name'), 'utf8').trim();

export interface GuestImage {
  dir: string;
  key: string;
  kernel: string;
  initrd: string;
  disk: string;
  /** True when this call found it in the cache. */
  cached: boolean;
  /** How long this call's build took (0 when cached). */
  buildMs: number;
  manifest: GuestImageManifest;
}

export interface GuestImageManifest {
  key: string;
  builtAt: string;
  /** The whole build, lock wait included. */
  buildMs: number;
  diskBytesAllocated: number;
  /** build.sh's progress lines ("[vm-image] 63s rootfs done (…)"): seconds since it started, and what was
   *  done by then. Images built before this was recorded have none. */
  steps?: BuildStep[];
}

export interface BuildStep {
  atS: number;
  what: string;
}

export function cacheRoot(): string {
  return process.env.FLEETRUNNER_VM_CACHE || DEFAULT_CACHE_ROOT;
}

export function guestImageKey(dir = GUEST_DIR): string {
  const h = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    h.update(`${name}\0`);
    h.update(readFileSync(join(dir, name)));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

function complete(dir: string): boolean {
  return ['vmlinuz', 'initrd.img', 'disk.raw', 'manifest.json'].every((f) => existsSync(join(dir, f)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function described(dir: string, key: string, cached: boolean, buildMs: number): GuestImage {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as GuestImage['manifest'];
  return { dir, key, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img'), disk: join(dir, 'disk.raw'), cached, buildMs, manifest };
}

/** Takes the build lock for `key`, waiting for a live holder; returns its release. */
async function lock(root: string, key: string, deadline: number): Promise<() => void> {
  const dir = join(root, `${key}.lock`);
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch {
        // being written, or left half-made by a dead process
      }
      const age = Date.now() - statSync(dir, { throwIfNoEntry: false })!.mtimeMs;
      if ((holder && !alive(holder)) || (!holder && age > 10_000)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another process (pid ${holder}) has been building the guest image too long (lock ${dir})`);
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}

/** True when the image of the current recipe is in the cache (no build needed). */
export function isGuestImageCached(): boolean {
  return complete(join(cacheRoot(), guestImageKey()));
}

/**
 * The cached guest image, built first when missing (needs root, mmdebstrap, e2fsprogs and network access to
 * the Debian mirror; about 3 to 5 minutes on 2 cores). Build progress goes to `log`. Throws a VmStageError
 * of stage "image build" with the end of the build's output.
 */
export async function ensureGuestImage(o: { log?: (line: string) => void; timeoutMs?: number } = {}): Promise<GuestImage> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const root = cacheRoot();
  const key = guestImageKey();
  const dir = join(root, key);
  if (complete(dir)) return described(dir, key, true, 0);
  const timeoutMs = o.timeoutMs ?? 15 * 60_000; // about 3 min alone, 7-9 min on a starved host
  const started = Date.now();
  try {
    mkdirSync(root, { recursive: true });
  } catch (e) {
    throw new VmStageError('image build', `cannot create the image cache ${root}: ${(e as Error).message}`);
  }
  const release = await lock(root, key, started + timeoutMs).catch((e: Error) => {
    throw new VmStageError('image build', e.message);
  });
  try {
    if (complete(dir)) return described(dir, key, true, 0); // built by the process we waited for
    const work = join(root, `${key}.building-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    log(`[vm-image] building the guest image ${key} in ${work} (cached for later runs)`);
    const { output, steps } = await runBuild(work, started + timeoutMs, log);
    const buildMs = Date.now() - started;
    const diskBytesAllocated = statSync(join(work, 'disk.raw')).blocks * 512;
    const manifest: GuestImageManifest = { key, builtAt: new Date().toISOString(), buildMs, diskBytesAllocated, steps };
    writeFileSync(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (!complete(work)) throw new VmStageError('image build', `the build left no complete image in ${work}:\n${tail(output)}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
    // One image in the cache: drop the entries of other keys (and builds of dead processes).
    for (const name of readdirSync(root)) {
      if (name === key || name === `${key}.lock`) continue;
      const m = /^([0-9a-f]{16})(?:\.building-(\d+)|\.lock)?$/.exec(name);
      if (!m) continue;
      if (m[2] && alive(Number(m[2]))) continue;
      if (name.endsWith('.lock')) continue;
      rmSync(join(root, name), { recursive: true, force: true });
    }
    log(`[vm-image] guest image ${key} ready after ${Math.round(buildMs / 1000)} s`);
    return described(dir, key, false, buildMs);
  } finally {
    release();
  }
}

const STEP_LINE = /^\[vm-image\] (\d+)s (.*)$/;

function runBuild(work: string, deadline: number, log: (line: string) => void): Promise<{ output: string; steps: BuildStep[] }> {
  return new Promise((resolve, reject) => {
    // Niced: the build shares the machine with the rest of the test suite.
    const child = spawn('nice', ['-n', '10', 'bash', join(GUEST_DIR, 'build.sh'), work], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      detached: true, // its own process group: a timeout stops mmdebstrap and dockerd too
    });
    let output = '';
    const steps: BuildStep[] = [];
    const onLine = (line: string) => {
      output = `${output}${line}\n`.slice(-64 * 1024);
      if (!line.startsWith('[vm-image]')) return;
      log(line);
      const m = STEP_LINE.exec(line);
      if (m) steps.push({ atS: Number(m[1]), what: m[2]! });
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    }, Math.max(1, deadline - Date.now()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new VmStageError('image build', `cannot run test/vm/guest/build.sh: ${e.message}`));
    });
    child.on('exit', async (code, signal) => {
      clearTimeout(timer);
      // The last lines may still be in the pipes; a process left holding them must not hold this up.
      await new Promise((r) => {
        child.once('close', r);
        setTimeout(r, 2_000).unref();
      });
      if (code === 0) resolve({ output, steps });
      else {
        rmSync(work, { recursive: true, force: true });
        const why = signal ? `was stopped (${signal}${Date.now() >= deadline ? ', timed out' : ''})` : `exited with ${code}`;
        const hint = 'it installs Debian packages from the mirror apt uses here (FLEETRUNNER_VM_MIRROR sets another)';
        reject(new VmStageError('image build', `test/vm/guest/build.sh ${why} (${hint}); last output:\n${tail(output, 30)}`));
      }
    });
  });
}
