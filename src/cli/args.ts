// Tiny, strict argument parsing: flags this CLI knows, clear errors for the rest.
import { parseArgs } from 'node:util';

export const HELP = `fleetrunner — a GitLab runner manager for AWS

Usage:
  fleetrunner run --config FILE        Run the coordinator in the foreground until SIGTERM/SIGINT/SIGQUIT.
                                       On the first signal it stops taking jobs, lets running jobs
                                       finish (shutdownTimeout), removes its machines and exits 0;
                                       a second signal cuts running jobs off at once.
  fleetrunner validate --config FILE   Check a config file: exit 0 if valid, 2 with the key path if not.
  fleetrunner render-config --config FILE
                                       Print the effective configuration (after \${ENV} interpolation and
                                       defaults; durations in ms, sizes in bytes) with secrets masked.
                                       The coordinator logs the same at start.
  fleetrunner verify --config FILE [--executor NAME]
                                       Check the runner token against GitLab and what each executor needs
                                       (AWS credentials, AMI, security groups, a DryRun launch per subnet
                                       and instance type, the S3 cache bucket, ECR logins; sshd for local).
                                       Prints a table; exit 0 if all pass, 1 if one fails, 2 for a bad config.
  fleetrunner gc --config FILE [--dry-run] [--grace DURATION] [--force]
                                       Garbage collection for the deployment: lists every machine of the
                                       fleet with its state and why it is kept or removed, then removes this
                                       deployment's machines that no running coordinator explains and that
                                       are older than --grace (default 30m). Machines of another deployment
                                       (another coordinator tag) are never touched. A running coordinator is
                                       told by the lease; without \`lease:\` nothing is removed unless --force.
                                       --dry-run prints the decisions only. Exit 0 ok, 1 if a listing or a
                                       terminate failed, 2 for bad usage or config.
  fleetrunner render-userdata --config FILE --executor NAME
                                       Print the cloud-init user data an ec2 executor's instances get
                                       (with throwaway example keys: the real ones are made per instance).
  fleetrunner agent-bundle DIR         Write the fargate agent bundle (the agent, node, bash, setsid, tail,
                                       their loader and libraries, a static busybox) into DIR: what the
                                       helper image holds at /bundle (docker/helper.Dockerfile).
  fleetrunner demo [--keep]            Local demo: fake GitLab + the real coordinator + local machines
                                       running a small pipeline; exit 0 when every job ended as expected.
                                       --keep leaves the demo directory (logs, traces) in place.
  fleetrunner --version | --help

Config: see README.md ("Configuration reference"). Values may use \${ENV_VAR}.
Environment, instead of --config (set at most one):
  FLEETRUNNER_CONFIG=FILE                 the config file
  FLEETRUNNER_CONFIG_YAML=YAML            the configuration itself
  FLEETRUNNER_CONFIG_SSM_PARAMETER=NAME   an SSM parameter (String or SecureString) holding it, read at start
  FLEETRUNNER_HEALTH_URL=URL              where the container health check asks (default http://127.0.0.1:9090)
`;

export interface CliArgs {
  command: string | undefined;
  config: string | undefined;
  keep: boolean;
  executor: string | undefined;
  /** gc */
  dryRun: boolean;
  force: boolean;
  grace: string | undefined;
  help: boolean;
  version: boolean;
  /** agent-bundle: the directory to write. */
  dir: string | undefined;
}

export function parseCli(argv: string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      keep: { type: 'boolean', default: false },
      executor: { type: 'string', short: 'e' },
      'dry-run': { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      grace: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', short: 'v', default: false },
    },
  });
  const allowed = positionals[0] === 'agent-bundle' ? 2 : 1;
  if (positionals.length > allowed) throw new Error(`unexpected argument "${positionals[allowed]}" (see fleetrunner --help)`);
  return { command: positionals[0], dir: positionals[0] === 'agent-bundle' ? positionals[1] : undefined, config: values.config, keep: values.keep ?? false, executor: values.executor, dryRun: values['dry-run'] ?? false, force: values.force ?? false, grace: values.grace, help: values.help ?? false, version: values.version ?? false };
}
