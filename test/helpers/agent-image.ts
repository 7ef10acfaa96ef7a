// The fargate helper image for tests: the agent bundle (src/agent/bundle.ts, from the built dist/agent and
// this host's programs) at /bundle and nothing else, made with `docker import` (no registry is reachable).
// Removed by the caller (`docker image rm`); a few hundred MB, mostly node.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { buildAgentBundle } from '../../src/agent/bundle.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function buildHelperImage(tag: string): void {
  const agentDir = join(REPO, 'dist', 'agent');
  if (!existsSync(join(agentDir, 'ssh-agent.js'))) throw new Error('dist/agent/ssh-agent.js is missing: run npm run build first');
  const work = mkdtempSync(join(tmpdir(), 'fr-agent-bundle-'));
  try {
    buildAgentBundle(join(work, 'bundle'), { agentDir, nodeModules: join(REPO, 'node_modules') });
    execFileSync('bash', ['-c', 'tar -C "$1" -c bundle | docker import - "$2"', 'import', work, tag], { stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
