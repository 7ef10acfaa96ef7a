// The README's YAML examples are what users copy: each one must pass `fleetrunner validate`. A fragment
// (an executors list without the rest) gets the smallest remainder added around it; nothing in the
// fragment itself is changed. Its configuration reference states the ranges of src/config/limits.ts.
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { compileConfig } from '../../../src/config/index.js';
import { describeRoute, route } from '../../../src/runner/routing.js';
import { jobPayload } from '../../helpers/job-payload.js';
import { COUNT_LIMITS, DURATION_LIMITS, EBS_LIMITS, EC2_USER_TAGS_MAX, formatDuration, formatSize, NUMBER_LIMITS, SIZE_LIMITS } from '../../../src/config/limits.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

const ec2Minimal = { instanceTypes: ['c6i.large'], subnets: ['subnet-0123abcd'] };

function completed(doc: Record<string, unknown>): Record<string, unknown> {
  const executors = (doc.executors as Array<Record<string, unknown>>).map((e) => (e.provider === 'ec2' && !e.ec2 ? { ...e, ec2: ec2Minimal } : e));
  return { gitlab: { url: 'https://gitlab.example.com', token: `glrt-${'x'.repeat(20)}` }, concurrent: 4, ...doc, executors };
}

describe('README YAML examples', () => {
  it('has examples with executors, among them the idle pool with a schedule', () => {
    expect(blocks.filter((b) => b.includes('executors:')).length).toBeGreaterThanOrEqual(2);
    expect(blocks.some((b) => b.includes('schedules:'))).toBe(true);
  });

  for (const [i, block] of blocks.entries()) {
    if (!block.includes('executors:')) continue;
    it(`example ${i + 1} (${block.split('\n')[0]!.slice(0, 60)}) validates`, () => {
      const doc = parseYaml(block.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => `from-env-${name.toLowerCase()}`)) as Record<string, unknown>;
      const config = compileConfig(completed(doc), {});
      expect(config.executors.length).toBeGreaterThan(0);
      if (block.includes('schedules:')) {
        const pool = config.executors[0]!.pool;
        expect(pool.schedules[0]!.timezone).toBe('Europe/Berlin');
        expect(pool.schedules[0]!.idleCount).toBe(3);
        expect(pool.idleTimeMs).toBe(15 * 60_000);
      }
    });
  }
});

describe('README: one set-up, three kinds of job', () => {
  const config = blocks.find((b) => b.startsWith('# fleetrunner.yaml — DinD on EC2'));
  const ci = blocks.find((b) => b.startsWith('stages: [build, test, deploy]'));

  it('the configuration parses and every job of the .gitlab-ci.yml beside it lands on its executor', () => {
    expect(config).toBeDefined();
    expect(ci).toBeDefined();
    const compiled = compileConfig(parseYaml(config!.replace(/\$\{[A-Z_]+\}/g, `glrt-${'x'.repeat(20)}`)) as Record<string, unknown>, {});
    expect(compiled.executors.map((e) => [e.name, e.provider])).toEqual([
      ['dind', 'ec2'],
      ['deploy-dev', 'ec2'],
      ['deploy-prod', 'ec2'],
      ['fargate', 'fargate'],
    ]);
    expect(compiled.executors[2]!.jobRole).toMatchObject({ roleArn: 'arn:aws:iam::210987654321:role/ci-deploy-prod', credentials: 'auto', sessionDurationMs: 3600_000 });

    // Each job as GitLab would send it (image, services, variables; `extends` merged).
    type CiJob = { image?: string; services?: string[]; variables?: Record<string, string>; extends?: string };
    const jobs = parseYaml(ci!) as Record<string, CiJob | string[]>;
    const payload = (name: string) => {
      const own = jobs[name] as CiJob;
      const j: CiJob = { ...(own.extends ? (jobs[own.extends] as CiJob) : {}), ...own };
      return jobPayload({
        job_info: { name },
        ...(j.image && { image: { name: j.image } }),
        services: (j.services ?? []).map((n) => ({ name: n })),
        variables: Object.entries(j.variables ?? {}).map(([key, value]) => ({ key, value, public: true })),
      });
    };
    const routed = Object.fromEntries(
      ['build-image', 'unit-tests', 'deploy-dev', 'deploy-prod'].map((name) => {
        const e = route(compiled.executors, payload(name))!;
        return [name, `${e.name}: ${describeRoute(e)}`];
      }),
    );
    expect(routed).toEqual({
      'build-image': 'dind: matched services docker:*',
      'unit-tests': 'fargate: default route (no match rules)',
      'deploy-dev': 'deploy-dev: matched DEPLOY_ENV="dev"',
      'deploy-prod': 'deploy-prod: matched DEPLOY_ENV="prod"',
    });
  });
});

describe('README configuration reference states each range', () => {
  const rows = readme
    .slice(readme.indexOf('## Configuration reference'), readme.indexOf('## How it works'))
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => l.split(' | '));
  /** The row whose key cell is exactly `key` (e.g. "executors[].pool.idleTime"), as [key, default, range, meaning]. */
  const row = (key: string) => {
    const found = rows.find((cells) => cells[0] === `| \`${key}\``);
    if (!found) throw new Error(`README has no row for ${key}`);
    return found;
  };
  const durationKeys: Record<keyof typeof DURATION_LIMITS, string> = {
    checkInterval: 'checkInterval',
    shutdownTimeout: 'shutdownTimeout',
    handoffTimeout: 'handoffTimeout',
    maximumTimeout: 'gitlab.runner.maximumTimeout',
    bootTimeout: 'executors[].bootTimeout',
    afterScriptTimeout: 'executors[].afterScriptTimeout',
    waitForServicesTimeout: 'executors[].docker.waitForServicesTimeout',
    urlExpiry: 'executors[].cache.s3.urlExpiry',
    capacityCooldown: 'executors[].ec2.capacityCooldown',
    idleTime: 'executors[].pool.idleTime',
    finalUpdateMaxBackoff: 'gitlab.finalUpdateMaxBackoff',
    leaseDuration: 'lease.duration',
    leaseRenewInterval: 'lease.renewInterval',
    leaseMaxClockSkew: 'lease.maxClockSkew',
    watchdogIdleTimeout: 'executors[].ec2.watchdog.idleTimeout',
    watchdogMaxLifetime: 'executors[].ec2.watchdog.maxLifetime',
    spotBreakerWindow: 'executors[].ec2.spotCircuitBreaker.window',
    spotBreakerOnDemandFor: 'executors[].ec2.spotCircuitBreaker.onDemandFor',
    jobRoleSessionDuration: 'executors[].jobRole.sessionDuration',
  };
  for (const [name, key] of Object.entries(durationKeys)) {
    it(`${key}`, () => {
      const r = DURATION_LIMITS[name as keyof typeof DURATION_LIMITS];
      expect(row(key)[2]).toBe(`\`${formatDuration(r.min)}\`–\`${formatDuration(r.max)}\``);
    });
  }
  it.each([
    ['concurrent', COUNT_LIMITS.concurrent],
    ['executors[].maxMachines', COUNT_LIMITS.maxMachines],
    ['executors[].pool.maxUseCount', COUNT_LIMITS.maxUseCount],
    ['executors[].pool.maxGrowthRate', COUNT_LIMITS.maxGrowthRate],
    ['executors[].docker.cpus', NUMBER_LIMITS.cpus],
    ['executors[].ec2.spotCircuitBreaker.interruptions', COUNT_LIMITS.spotBreakerInterruptions],
  ])('%s', (key, r) => expect(row(key)[2]).toBe(`${r.min}–${r.max}`));
  it('outputLimit, metrics.listen and the pool counts', () => {
    expect(row('outputLimit')[2]).toBe(`\`${formatSize(SIZE_LIMITS.outputLimit.min)}\`–\`${formatSize(SIZE_LIMITS.outputLimit.max)}\``);
    expect(row('metrics.listen')[2]).toBe(`port ${COUNT_LIMITS.port.min}–${COUNT_LIMITS.port.max}`);
    expect(row('executors[].pool.idleCount')[2]).toBe('0–`maxMachines`');
    expect(row('executors[].pool.scaleFactor`, `scaleFactorLimit')[2]).toBe(`${NUMBER_LIMITS.scaleFactor.min}–${NUMBER_LIMITS.scaleFactor.max}, 0–\`maxMachines\``);
    expect(row('executors[].ec2.tags')[2]).toBe(`at most ${EC2_USER_TAGS_MAX}`);
    expect(row('executors[].ec2.rootVolume.throughput')[2]).toBe(`${EBS_LIMITS.gp3.throughput!.min}–${EBS_LIMITS.gp3.throughput!.max}`);
  });
});
