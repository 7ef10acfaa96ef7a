// docker/Dockerfile cannot be built here (no base-image registry): what it copies must exist, its runtime
// stage must not be root, and its entrypoint and health check must name files the build produces.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTemplate, type Json } from '../../helpers/cfn-template.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Stages and their instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: m[1]!, ...(m[2] && { name: m[2] }), instructions: [] });
    } else stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

const exec = (args: string): string[] => JSON.parse(args) as string[];
/** What `npm run build` (tsc -p tsconfig.build.json) writes for a file under src/. */
const built = (distPath: string) => join(ROOT, 'src', distPath.replace(/^\/app\/dist\//, '').replace(/\.js$/, '.ts'));

describe('docker/Dockerfile', () => {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'docker', 'Dockerfile'), 'utf8'));
  const runtime = stages.at(-1)!;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string }; scripts: Record<string, string> };

  it('builds in one stage and runs from a slim Node LTS image in another', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', undefined]);
    for (const s of stages) expect(s.from).toMatch(/^node:24-[a-z]+-slim$/);
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  });

  it('copies only files that exist, and from the build stage only what it produces', () => {
    for (const stage of stages) {
      for (const { args } of stage.instructions.filter((i) => i.op === 'COPY')) {
        const words = args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const sources = paths.slice(0, -1);
        if (from) {
          expect(stages.map((s) => s.name)).toContain(from);
          // npm ci makes node_modules, the build makes dist (tsconfig.build.json's outDir).
          for (const src of sources) expect(['/app/node_modules', '/app/dist']).toContain(src);
        } else {
          for (const src of sources) expect(existsSync(join(ROOT, src)), `${src} (COPY ${args})`).toBe(true);
        }
      }
    }
    const outDir = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
    expect(outDir).toBe('dist');
  });

  it('runs as a user that is not root', () => {
    const users = runtime.instructions.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0', '0:0']).not.toContain(users.at(-1));
  });

  it('starts under tini with the CLI the repository ships, and records the revision it was built from', () => {
    const entry = exec(runtime.instructions.find((i) => i.op === 'ENTRYPOINT')!.args);
    expect(entry.slice(0, 3)).toEqual(['/usr/bin/tini', '--', 'node']);
    expect(entry[3]).toBe('/app/bin/fleetrunner.js');
    expect(existsSync(join(ROOT, 'bin', 'fleetrunner.js'))).toBe(true);
    expect(runtime.instructions.some((i) => i.op === 'RUN' && /apt-get install .*\btini\b/.test(i.args))).toBe(true);
    expect(exec(runtime.instructions.find((i) => i.op === 'CMD')!.args)).toEqual(['run']);
    expect(runtime.instructions.find((i) => i.op === 'ARG')?.args).toMatch(/^FLEETRUNNER_REVISION=/);
    expect(runtime.instructions.find((i) => i.op === 'ENV')?.args).toMatch(/FLEETRUNNER_REVISION=\$\{FLEETRUNNER_REVISION\}/);
  });

  it('checks health with the script the build makes, the same command the task definition uses', () => {
    const hc = runtime.instructions.find((i) => i.op === 'HEALTHCHECK')!.args;
    const cmd = exec(hc.slice(hc.indexOf('CMD') + 3).trim());
    expect(cmd.slice(0, 1)).toEqual(['node']);
    expect(existsSync(built(cmd[1]!))).toBe(true);
    const container = (loadTemplate().Resources.TaskDefinition!.Properties!.ContainerDefinitions as Json[])[0] as { HealthCheck: { Command: string[] } };
    expect(container.HealthCheck.Command).toEqual(['CMD', ...cmd]);
  });
});
