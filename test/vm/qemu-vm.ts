// One EC2 stand-in instance: a QEMU VM (software emulation, TCG: no KVM on the CI machines) booted from
// the cached guest image with the instance's user data on a NoCloud seed, inside the subnet's namespace.
//
//   - disk: a qcow2 overlay on the image's disk.raw, per VM (every boot is a first boot; the image is never written)
//   - seed: an ISO labelled "cidata" with `user-data` (exactly what RunInstances got) and `meta-data`
//     (instance-id, hostname), which cloud-init's NoCloud datasource reads
//   - network: user-mode, the guest's port 22 forwarded from the instance's address in the namespace
//   - console: the serial console, in console.log (kernel, systemd, cloud-init output)
//   - power: QMP; powerOff() presses the ACPI power button (system_powerdown) and kills QEMU if the guest
//     has not powered off within the grace period, as EC2's terminate does
//
// While it boots, a watcher records the timeline from the host's side: QEMU started, the first SSH banner
// (and whether the host key it presented is the pinned one from the user data), cloud-init's "finished" line
// on the console, and the exit.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';

import ssh2, { Client } from 'ssh2';
import { parse as parseYaml } from 'yaml';

import type { GuestImage } from './guest-image.js';
import type { Subnet } from './subnet.js';

const { utils } = ssh2;

export interface VmTimeline {
  /** Host clock (ms since the epoch). */
  launchedAt: number;
  qemuStartedAt?: number;
  /** The first SSH banner on the instance's port 22. */
  sshBannerAt?: number;
  /** The host key that first banner presented was the pinned one from the user data. */
  firstHostKeyPinned?: boolean;
  /** cloud-init's "Cloud-init v. … finished at …" line on the console. */
  cloudInitDoneAt?: number;
  powerOffAt?: number;
  exitedAt?: number;
  /** How QEMU ended: 'acpi' (the guest powered off), 'killed' (after the grace period), 'crashed'. */
  exit?: 'acpi' | 'killed' | 'crashed';
}

export interface VmOptions {
  id: string;
  /** Where this VM keeps its overlay, seed and console log. */
  dir: string;
  image: GuestImage;
  subnet: Subnet;
  /** The instance's address in the subnet (PrivateIpAddress). */
  ip: string;
  userData: string;
  hostname: string;
  memoryMb?: number;
  cpus?: number;
  /** Called once when QEMU exits, however it ends. */
  onExit?: (vm: QemuVm) => void;
}

const CLOUD_INIT_DONE = /Cloud-init v\. \S+ finished at/;

/** The pinned host key (ssh_keys.ed25519_public) of rendered user data, as an SSH key blob. */
export function pinnedHostKey(userData: string): Buffer {
  const doc = parseYaml(userData) as { ssh_keys?: { ed25519_public?: string } };
  const pub = doc.ssh_keys?.ed25519_public;
  if (!pub) throw new Error('the user data has no ssh_keys.ed25519_public');
  const key = utils.parseKey(pub);
  const k = Array.isArray(key) ? key[0] : key;
  if (!k || k instanceof Error) throw new Error(`cannot parse the pinned host key: ${k instanceof Error ? k.message : 'empty'}`);
  return k.getPublicSSH();
}

export class QemuVm {
  readonly timeline: VmTimeline;
  readonly consolePath: string;
  private child?: ChildProcess;
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;
  private stopWatching = false;
  private poweringOff = false;

  constructor(readonly o: VmOptions) {
    this.timeline = { launchedAt: Date.now() };
    this.consolePath = join(o.dir, 'console.log');
    this.exited = new Promise((r) => (this.resolveExited = r));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.timeline.exitedAt === undefined;
  }

  console(): string {
    try {
      return readFileSync(this.consolePath, 'utf8');
    } catch {
      return '';
    }
  }

  /** Writes the seed and overlay and starts QEMU; resolves once QEMU answers on its QMP socket. */
  async start(): Promise<void> {
    const { dir, image, subnet, ip } = this.o;
    mkdirSync(dir, { recursive: true });
    const seedDir = join(dir, 'seed');
    mkdirSync(seedDir, { recursive: true });
    writeFileSync(join(seedDir, 'user-data'), this.o.userData, { mode: 0o600 });
    writeFileSync(join(seedDir, 'meta-data'), `instance-id: ${this.o.id}\nlocal-hostname: ${this.o.hostname}\n`);
    run('genisoimage', ['-quiet', '-output', join(dir, 'seed.iso'), '-volid', 'cidata', '-joliet', '-rock', join(seedDir, 'user-data'), join(seedDir, 'meta-data')]);
    run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image.disk, '-F', 'raw', join(dir, 'overlay.qcow2')]);
    subnet.addAddress(ip);
    const qmp = join(dir, 'qmp.sock');
    const argv = [
      // Niced: the emulated CPUs would otherwise take both cores from the tests running beside this one.
      'nice', '-n', '10',
      'qemu-system-x86_64',
      '-name', this.o.id,
      '-accel', 'tcg',
      '-m', String(this.o.memoryMb ?? 2048),
      '-smp', String(this.o.cpus ?? 2),
      '-display', 'none',
      '-no-reboot',
      '-kernel', image.kernel,
      '-initrd', image.initrd,
      '-append', 'root=/dev/vda rw console=ttyS0',
      '-drive', `file=${join(dir, 'overlay.qcow2')},if=virtio,format=qcow2`,
      '-drive', `file=${join(dir, 'seed.iso')},if=virtio,format=raw,media=cdrom,readonly=on`,
      '-nic', `user,model=virtio-net-pci,hostfwd=tcp:${ip}:22-:22`,
      '-serial', `file:${this.consolePath}`,
      '-qmp', `unix:${qmp},server=on,wait=off`,
    ];
    const log = openSync(join(dir, 'qemu.log'), 'a');
    const [cmd, ...args] = subnet.exec(argv);
    const child = spawn(cmd!, args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    child.on('exit', () => {
      this.timeline.exitedAt = Date.now();
      this.timeline.exit ??= this.poweringOff ? 'acpi' : 'crashed';
      this.stopWatching = true;
      this.resolveExited();
      this.o.onExit?.(this);
    });
    child.on('error', () => undefined);
    const deadline = Date.now() + 30_000;
    while (!(await qmpAnswers(qmp))) {
      if (this.timeline.exitedAt !== undefined) throw new Error(`QEMU exited at once: ${this.qemuLog()}`);
      if (Date.now() > deadline) throw new Error(`QEMU did not answer on its QMP socket within 30 s: ${this.qemuLog()}`);
      await sleep(200);
    }
    this.timeline.qemuStartedAt = Date.now();
    void this.watchSsh(pinnedHostKey(this.o.userData));
    void this.watchConsole();
  }

  qemuLog(): string {
    try {
      return readFileSync(join(this.o.dir, 'qemu.log'), 'utf8').trim().slice(-2000) || '(no output)';
    } catch {
      return '(no output)';
    }
  }

  /** ACPI power button, then SIGKILL after `graceMs`; resolves when QEMU has exited. */
  async powerOff(graceMs = 60_000): Promise<void> {
    if (!this.child || this.timeline.exitedAt !== undefined) return;
    if (!this.poweringOff) {
      this.poweringOff = true;
      this.timeline.powerOffAt = Date.now();
      await qmpCommand(join(this.o.dir, 'qmp.sock'), 'system_powerdown').catch(() => undefined);
    }
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Hard stop (QEMU killed): for clean-up after a failure. */
  async kill(): Promise<void> {
    if (!this.child || this.timeline.exitedAt !== undefined) return;
    this.timeline.exit = 'killed';
    try {
      process.kill(this.child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.exited;
  }

  waitExited(): Promise<void> {
    return this.exited;
  }

  /** Connects to port 22 every second until a server presents a host key; records the first one. */
  private async watchSsh(pinned: Buffer): Promise<void> {
    while (!this.stopWatching) {
      const presented = await firstHostKey(this.o.ip, 22, 5_000);
      if (presented) {
        this.timeline.sshBannerAt = Date.now();
        this.timeline.firstHostKeyPinned = presented.equals(pinned);
        return;
      }
      await sleep(1_000);
    }
  }

  private async watchConsole(): Promise<void> {
    while (!this.stopWatching) {
      if (CLOUD_INIT_DONE.test(this.console())) {
        this.timeline.cloudInitDoneAt = Date.now();
        return;
      }
      await sleep(1_000);
    }
  }
}

/** The host key an SSH server at host:port presents (the connection is dropped right after), or undefined. */
function firstHostKey(host: string, port: number, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const c = new Client();
    let key: Buffer | undefined;
    const done = () => {
      c.removeAllListeners();
      c.on('error', () => undefined);
      c.end();
      resolve(key);
    };
    c.on('error', done);
    c.on('close', done);
    c.on('ready', done);
    c.connect({
      host,
      port,
      username: 'fleetrunner-pin-check',
      readyTimeout: timeoutMs,
      algorithms: { serverHostKey: ['ssh-ed25519'] },
      hostVerifier: (k: Buffer) => {
        key = Buffer.from(k);
        return false; // only the key was wanted
      },
    });
  });
}

function qmpAnswers(path: string): Promise<boolean> {
  return qmpCommand(path).then(
    () => true,
    () => false,
  );
}

/** Opens the QMP socket, negotiates, and runs `command` (none: just the greeting). */
function qmpCommand(path: string, command?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = netConnect(path);
    let buf = '';
    let step = 0;
    const timer = setTimeout(() => finish(new Error('QMP timeout')), 3_000);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      s.destroy();
      if (err) reject(err);
      else resolve();
    };
    s.on('error', (e) => finish(e));
    s.on('data', (d) => {
      buf += d.toString();
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        if (msg.event) continue;
        if (msg.error) return finish(new Error(`QMP: ${msg.error.desc ?? 'error'}`));
        if (step === 0 && msg.QMP) {
          step = 1;
          s.write('{"execute":"qmp_capabilities"}\n');
        } else if (step === 1 && msg.return !== undefined) {
          if (!command) return finish();
          step = 2;
          s.write(`${JSON.stringify({ execute: command })}\n`);
        } else if (step === 2 && msg.return !== undefined) return finish();
      }
    });
  });
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} exited with ${r.status}: ${r.stderr.trim()}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
