// The composition root's entry: parse the command line and dispatch. Exit codes: 0 ok, 1 runtime
// failure, 2 bad usage or invalid config.

import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors.js';
import { parseConfigText, parseDuration, type FleetConfig } from '../config/index.js';
import { HELP, parseCli } from './args.js';
import { VERSION } from './version.js';

export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseCli(argv);
  } catch (e) {
    process.stderr.write(`fleetrunner: ${(e as Error).message}\n`);
    return 2;
  }
  if (args.version) {
    process.stdout.write(`fleetrunner ${VERSION}\n`);
    return 0;
  }
  if (args.help || !args.command || args.command === 'help') {
    process.stdout.write(HELP);
    return args.command || args.help ? 0 : 2;
  }
  switch (args.command) {
    case 'validate': {
      const loaded = loadConfig(args.config);
      if (typeof loaded === 'number') return loaded;
      process.stdout.write(`${args.config ?? process.env.FLEETRUNNER_CONFIG}: valid (${loaded.executors.length} executor${loaded.executors.length > 1 ? 's' : ''}, concurrent ${loaded.concurrent})\n`);
      return 0;
    }
    case 'verify': {
      const loaded = loadConfig(args.config);
      if (typeof loaded === 'number') return loaded;
      if (args.executor !== undefined && !loaded.executors.some((e) => e.name === args.executor)) {
        process.stderr.write(`fleetrunner: executors: no executor named "${args.executor}" (have: ${loaded.executors.map((e) => e.name).join(', ')})\n`);
        return 2;
      }
      const { runVerify } = await import('./verify.js');
      return runVerify(loaded, args.executor !== undefined ? { executor: args.executor } : {});
    }
    case 'gc': {
      const graceMs = args.grace === undefined ? undefined : parseDuration(args.grace);
      if (args.grace !== undefined && graceMs === undefined) {
        process.stderr.write(`fleetrunner: --grace: expected a duration such as 30m, 2h or 0s, got "${args.grace}"\n`);
        return 2;
      }
      const loaded = loadConfig(args.config);
      if (typeof loaded === 'number') return loaded;
      const { runGc } = await import('./gc.js');
      return runGc(loaded, { dryRun: args.dryRun, force: args.force, ...(graceMs !== undefined && { graceMs }) });
    }
    case 'run': {
      const loaded = loadConfig(args.config);
      if (typeof loaded === 'number') return loaded;
      const { runCoordinator } = await import('./foreground.js');
      const file = args.config ?? process.env.FLEETRUNNER_CONFIG!;
      return runCoordinator(loaded, { reloadConfig: () => parseConfigText(readFileSync(file, 'utf8'), process.env) });
    }
    case 'render-userdata': {
      const loaded = loadConfig(args.config);
      if (typeof loaded === 'number') return loaded;
      const name = args.executor ?? loaded.executors.find((e) => e.provider === 'ec2')?.name;
      if (!name) {
        process.stderr.write('fleetrunner: --executor NAME is required (no ec2 executor in the config)\n');
        return 2;
      }
      const i = loaded.executors.findIndex((e) => e.name === name);
      const executor = loaded.executors[i];
      if (!executor) {
        process.stderr.write(`fleetrunner: executors: no executor named "${name}" (have: ${loaded.executors.map((e) => e.name).join(', ')})\n`);
        return 2;
      }
      if (!executor.ec2) {
        process.stderr.write(`fleetrunner: executors[${i}].provider: executor "${name}" uses provider ${executor.provider}, not ec2: it has no user data\n`);
        return 2;
      }
      const { renderUserDataForCli } = await import('../providers/ec2/index.js');
      process.stdout.write(renderUserDataForCli({ name: executor.name, ec2: executor.ec2 }));
      return 0;
    }
    case 'agent-bundle': {
      const dir = args.dir;
      if (!dir) {
        process.stderr.write('fleetrunner: agent-bundle needs a directory: fleetrunner agent-bundle DIR\n');
        return 2;
      }
      const { buildAgentBundle } = await import('../agent/bundle.js');
      try {
        buildAgentBundle(dir);
      } catch (e) {
        process.stderr.write(`fleetrunner: ${(e as Error).message}\n`);
        return 1;
      }
      process.stdout.write(`agent bundle written to ${dir}\n`);
      return 0;
    }
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      return runDemo({ keep: args.keep });
    }
    default:
      process.stderr.write(`fleetrunner: unknown command "${args.command}" (see fleetrunner --help)\n`);
      return 2;
  }
}

/** The config, or an exit code after printing why it cannot be used. */
function loadConfig(path: string | undefined): FleetConfig | number {
  const file = path ?? process.env.FLEETRUNNER_CONFIG;
  if (!file) {
    process.stderr.write('fleetrunner: --config FILE is required\n');
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`fleetrunner: cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`);
    return 2;
  }
  try {
    return parseConfigText(text, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`fleetrunner: invalid config ${file}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** Runs the CLI in this process: the exit code becomes the process's; an unexpected error prints and exits 1. */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // The work is done: whatever still holds the event loop (an idle keep-alive socket, a straggling
      // timer) must not keep a stopped coordinator alive. Output written so far is flushed (stderr and
      // stdout are synchronous for files and pipes).
      setTimeout(() => process.exit(code), 500).unref();
    },
    (err: unknown) => {
      process.stderr.write(`fleetrunner: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
      // Nor may a start-up that failed half-way (a listening metrics server, a lease still being renewed).
      setTimeout(() => process.exit(1), 500).unref();
    },
  );
}

/** `node dist/cli/main.js …` is the CLI too, like the installed `fleetrunner` (bin/fleetrunner.js). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) runCli(process.argv.slice(2));
