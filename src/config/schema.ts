// The config file's shape. Keys may be added over time; existing keys never change meaning (DESIGN.md).
// Durations/sizes accept human units and are normalised by compile.ts.

import { z } from 'zod';

const duration = z.union([z.string(), z.number()]).describe('a duration such as 30s, 5m or 1h30m');
const size = z.union([z.string(), z.number()]).describe('a size such as 4MiB or 512KiB');
const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'expected lowercase letters, digits and dashes (at most 40), starting with a letter or digit');

const localProvider = z.strictObject({
  /** Directory under which each local machine gets its own folder. */
  root: z.string().optional(),
  /** loopback: sshd on 127.0.0.1; namespace: each machine in its own network namespace. */
  network: z.enum(['loopback', 'namespace']).default('loopback'),
});

const routing = z.strictObject({
  /** The job runs here if it uses a service whose image starts with one of these (e.g. docker:dind). */
  services: z.array(z.string()).optional(),
  /** Image name prefixes. */
  images: z.array(z.string()).optional(),
  /** Variables that must be set to the given values. */
  variables: z.record(z.string(), z.string()).optional(),
});

export const executorSchema = z.strictObject({
  name,
  provider: z.enum(['local']),
  style: z.enum(['shell']).default('shell'),
  maxMachines: z.number().int().positive(),
  /** Extra variables for every job on this executor (gitlab-runner's `environment`). */
  environment: z.record(z.string(), z.string()).default({}),
  bootTimeout: duration.default('2m'),
  afterScriptTimeout: duration.default('5m'),
  /** Ordered routing: the first executor whose rules match takes the job; no rules = matches all. */
  match: routing.optional(),
  local: localProvider.default({ network: 'loopback' }),
});

export const configSchema = z.strictObject({
  gitlab: z.strictObject({
    url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as https://gitlab.example.com' }),
    /** Runner authentication token (glrt-…), or the token of a runner registered earlier. */
    token: z.string().min(1).optional(),
    /** Legacy registration token: fleetrunner registers on start and unregisters on stop. */
    registrationToken: z.string().min(1).optional(),
    /** GitLab's URL as machines reach it (artifacts, cache, git), when it differs from `url`. */
    machineUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Used only with registrationToken. */
    runner: z
      .strictObject({
        description: z.string().default('fleetrunner'),
        tags: z.array(z.string()).default([]),
        runUntagged: z.boolean().default(true),
        locked: z.boolean().default(false),
        maximumTimeout: duration.optional(),
      })
      .default({ description: 'fleetrunner', tags: [], runUntagged: true, locked: false }),
    /** Delete this coordinator's runner manager from GitLab on a clean stop (glrt- tokens). */
    unregisterOnStop: z.boolean().default(true),
  }),
  concurrent: z.number().int().positive(),
  /** Pause after GitLab answered "no job" (gitlab-runner's check_interval). */
  checkInterval: duration.default('3s'),
  /** On SIGTERM: how long running jobs may take to finish before they are failed. */
  shutdownTimeout: duration.default('1h'),
  /** Trace size limit per job (gitlab-runner's output_limit, 4096 KB by default). */
  outputLimit: size.default('4MiB'),
  /** Names the fleet in ownership tags; two coordinators of one fleet never touch each other's machines. */
  fleet: name.default('fleetrunner'),
  /** Where the coordinator keeps its system id and trace spool. */
  stateDir: z.string().optional(),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info'), format: z.enum(['json', 'pretty']).default('json') })
    .default({ level: 'info', format: 'json' }),
  metrics: z.strictObject({ listen: z.string().optional() }).default({}),
  executors: z.array(executorSchema).min(1, 'expected at least one executor'),
});

export type RawConfig = z.infer<typeof configSchema>;
