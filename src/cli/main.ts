// The composition root's entry: parse the command line and dispatch. Exit codes: 0 ok, 1 runtime
// failure, 2 bad usage or invalid config.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors.js';
import { parseConfigText, parseDuration, type FleetConfig } from '../config/index.js';
import { HELP, parseCli } from './args.js';
import { configSource, describeSource, readConfigSource, ssmParameterReader, type ConfigSource } from './config-source.js';
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
      const got = await loadConfig(args.config);
      if (typeof got === 'number') return got;
      const loaded = got.config;
      const runners = loaded.runners.length > 1 ? `, ${loaded.runners.length} runners` : '';
      process.stdout.write(`${got.where}: valid (${loaded.executors.length} executor${loaded.executors.length > 1 ? 's' : ''}${runners}, concurrent ${loaded.concurrent})\n`);
      return 0;
    }
    case 'render-config': {
      const got = await loadConfig(args.config);
      if (typeof got === 'number') return got;
      const loaded = got.config;
      const { renderConfig } = await import('./render-config.js');
      process.stdout.write(renderConfig(loaded, got.where));
      return 0;
    }
    case 'verify': {
      const got = await loadConfig(args.config);
      if (typeof got === 'number') return got;
      const loaded = got.config;
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
      const got = await loadConfig(args.config);
      if (typeof got === 'number') return got;
      const loaded = got.config;
      const { runGc } = await import('./gc.js');
      return runGc(loaded, { dryRun: args.dryRun, force: args.force, ...(graceMs !== undefined && { graceMs }) });
    }
    case 'run': {
      const got = await loadConfig(args.config);
      if (typeof got === 'number') return got;
      const loaded = got.config;
      const { runCoordinator } = await import('./foreground.js');
      const { source } = got;
      // SIGHUP reads the same source again (a file edited in place, a parameter updated in SSM).
      return runCoordinator(loaded, { source: got.where, reloadConfig: async () => parseConfigText(await readConfigSource(source, { ssmParameter: await ssmParameterReader() }), process.env) });
    }
    case 'render-userdata': {
      const got = await loadConfig(args.config);
      if (typeof got === 'number') return got;
      const loaded = got.config;
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

/** A loaded config with where it came from. */
interface Loaded {
  config: FleetConfig;
  source: ConfigSource;
  /** The source as messages name it. */
  where: string;
}

/** The config (--config FILE, or the environment: see config-source.ts), or an exit code after printing why
 *  it cannot be used. */
async function loadConfig(path: string | undefined): Promise<Loaded | number> {
  const source = configSource(path, process.env);
  if ('error' in source) {
    process.stderr.write(`fleetrunner: ${source.error}\n`);
    return 2;
  }
  const where = describeSource(source);
  let text: string;
  try {
    text = await readConfigSource(source, { ssmParameter: async (name) => (await ssmParameterReader())(name) });
  } catch (e) {
    process.stderr.write(`fleetrunner: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    return { config: parseConfigText(text, process.env), source, where };
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`fleetrunner: invalid config ${where}: ${e.message}\n`);
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
