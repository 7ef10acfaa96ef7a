// The agent bundle: what the helper container copies into a task's shared volume (/fleetrunner), so that
// any Linux image can be driven with nothing of its own but a kernel:
//   libexec/  node (runs the agent), bash, setsid, tail (what the shell-style stages need), busybox (static:
//             the interpreter of the wrappers below)
//   lib/      the dynamic loader and every shared library those programs need, from this host
//   bin/      agent, bash, setsid, tail: wrappers that start libexec/<tool> through the bundled loader, so the
//             image's own libc (musl, an old glibc, none) never matters; first on the agent's PATH
//   agent/    ssh-agent.js and the ssh2 modules it needs
//   bundle.json  { loader }: how the agent starts bash without a wrapper
// Built by `fleetrunner agent-bundle DIR` in the helper image (docker/helper.Dockerfile) and by the tests,
// from the programs of the host it runs on (ldd lists their libraries).

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { BUNDLE_MOUNT } from '../core/agent-bundle.js';
import type { BundleManifest } from './ssh-agent.js';

/** The programs the shell-style stages call by name besides the image's own. */
export const BUNDLED_TOOLS = ['bash', 'setsid', 'tail'] as const;
/** ssh2 and what it needs at run time (cpu-features is optional: ssh2 does without it). */
const AGENT_MODULES = ['ssh2', 'asn1', 'bcrypt-pbkdf', 'safer-buffer', 'tweetnacl'];
const SEARCH = ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'];

function which(name: string): string {
  for (const d of SEARCH) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(`cannot build the agent bundle: ${name} is not installed (searched ${SEARCH.join(', ')})`);
}

/** The shared libraries of `program` and its loader, as ldd resolves them on this host. */
function libraries(program: string): { libs: string[]; loader: string | undefined } {
  const out = execFileSync('ldd', [program], { encoding: 'utf8' });
  const libs: string[] = [];
  let loader: string | undefined;
  for (const line of out.split('\n')) {
    const resolved = /=>\s+(\/\S+)/.exec(line);
    if (resolved) libs.push(resolved[1]!);
    else if (/^\s*(\/\S*ld-linux\S*)\s/.test(line)) loader = /^\s*(\/\S+)/.exec(line)![1]!;
  }
  return { libs, loader };
}

export interface AgentBundleOptions {
  /** Where ssh-agent.js is (the built dist/agent). Default: beside this module. */
  agentDir?: string;
  /** node_modules holding ssh2 and its dependencies. Default: the package's. */
  nodeModules?: string;
  /** The node binary to bundle. Default: the one running. */
  node?: string;
}

export function buildAgentBundle(dir: string, o: AgentBundleOptions = {}): BundleManifest {
  const here = dirname(fileURLToPath(import.meta.url));
  const agentDir = o.agentDir ?? here;
  const nodeModules = o.nodeModules ?? join(here, '..', '..', 'node_modules');
  for (const d of ['lib', 'libexec', 'bin', 'agent/node_modules']) mkdirSync(join(dir, d), { recursive: true });
  const programs: Record<string, string> = { node: o.node ?? process.execPath };
  for (const t of BUNDLED_TOOLS) programs[t] = which(t);
  let loader: string | undefined;
  for (const [name, path] of Object.entries(programs)) {
    copyFileSync(path, join(dir, 'libexec', name));
    chmodSync(join(dir, 'libexec', name), 0o755);
    const l = libraries(path);
    loader ??= l.loader;
    for (const lib of l.libs) copyFileSync(lib, join(dir, 'lib', basename(lib)));
  }
  if (!loader) throw new Error('cannot build the agent bundle: ldd named no dynamic loader for node');
  const loaderName = basename(loader);
  copyFileSync(loader, join(dir, 'lib', loaderName));
  chmodSync(join(dir, 'lib', loaderName), 0o755);
  const busybox = which('busybox');
  if (!/not a dynamic executable|statically linked/.test(spawnText('ldd', [busybox]))) throw new Error(`cannot build the agent bundle: ${busybox} is not static (apt-get install busybox-static)`);
  copyFileSync(busybox, join(dir, 'libexec', 'busybox'));
  chmodSync(join(dir, 'libexec', 'busybox'), 0o755);
  // A shebang needs an absolute path: the bundle is always mounted at BUNDLE_MOUNT in the job's container.
  const wrapper = (program: string) => `#!${BUNDLE_MOUNT}/libexec/busybox sh\nexec ${BUNDLE_MOUNT}/lib/${loaderName} --library-path ${BUNDLE_MOUNT}/lib ${program} "$@"\n`;
  for (const t of BUNDLED_TOOLS) writeFileSync(join(dir, 'bin', t), wrapper(`${BUNDLE_MOUNT}/libexec/${t}`), { mode: 0o755 });
  writeFileSync(join(dir, 'bin', 'agent'), wrapper(`${BUNDLE_MOUNT}/libexec/node ${BUNDLE_MOUNT}/agent/ssh-agent.js`), { mode: 0o755 });
  copyFileSync(join(agentDir, 'ssh-agent.js'), join(dir, 'agent', 'ssh-agent.js'));
  writeFileSync(join(dir, 'agent', 'package.json'), '{"type":"module"}\n');
  for (const m of AGENT_MODULES) cpSync(join(nodeModules, m), join(dir, 'agent', 'node_modules', m), { recursive: true, dereference: true });
  const manifest: BundleManifest = { loader: `lib/${loaderName}` };
  writeFileSync(join(dir, 'bundle.json'), `${JSON.stringify(manifest)}\n`);
  return manifest;
}

function spawnText(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`;
  }
}
