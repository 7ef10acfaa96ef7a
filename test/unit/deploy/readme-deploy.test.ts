// A newcomer's walk through README "Deploy on AWS" (and examples/gitlab-ci-deploy.yml), checked against the
// template and the CLI: the command deploys this template with every parameter it needs and only parameters
// it has, the tables name the template's parameters and outputs, and every command and variable exists.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HELP, parseCli } from '../../../src/cli/args.js';
import { ENV_FILE, ENV_SSM, ENV_YAML } from '../../../src/cli/config-source.js';
import { DEFAULT_HEALTH_URL } from '../../../src/cli/healthcheck.js';
import { loadTemplate, type Template } from '../../helpers/cfn-template.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const template = loadTemplate();
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The text of a `## ` section, up to the next one. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README section "## ${title}"`).toBeGreaterThan(0);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The first column of the table whose header starts with `| header |`, split on ", ". */
function tableColumn(text: string, header: string): string[] {
  const start = text.indexOf(`| ${header} |`);
  expect(start, `a table headed "${header}"`).toBeGreaterThanOrEqual(0);
  const rows = text.slice(start).split('\n').slice(2);
  const names: string[] = [];
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    names.push(...row.split('|')[1]!.split(',').map((c) => c.trim().replace(/`/g, '')));
  }
  return names;
}

/** Problems of a `sam deploy` command line against the template. */
function samDeployProblems(command: string, t: Template): string[] {
  const words = command.replace(/\\\n/g, ' ').trim().split(/\s+/);
  const problems: string[] = [];
  if (words[0] !== 'sam' || words[1] !== 'deploy') return [`not a sam deploy command: ${command.slice(0, 40)}`];
  const flag = (name: string) => {
    const i = words.indexOf(name);
    return i < 0 ? undefined : words[i + 1];
  };
  const file = flag('--template-file');
  if (file !== 'cloudformation/template.yaml' || !existsSync(join(ROOT, file))) problems.push(`--template-file ${file}: not the stack's template`);
  if (!flag('--stack-name')) problems.push('no --stack-name');
  // Roles without fixed names: CAPABILITY_IAM is enough (CAPABILITY_NAMED_IAM only for named ones).
  const named = Object.values(t.Resources).some((r) => r.Type.startsWith('AWS::IAM::') && r.Properties && ('RoleName' in r.Properties || 'InstanceProfileName' in r.Properties));
  const caps = flag('--capabilities');
  if (caps !== (named ? 'CAPABILITY_NAMED_IAM' : 'CAPABILITY_IAM')) problems.push(`--capabilities ${caps}: the template needs ${named ? 'CAPABILITY_NAMED_IAM' : 'CAPABILITY_IAM'}`);
  const i = words.indexOf('--parameter-overrides');
  const given = new Map<string, string>();
  for (const w of words.slice(i + 1)) {
    if (w.startsWith('--')) break;
    const eq = w.indexOf('=');
    given.set(w.slice(0, eq), w.slice(eq + 1));
  }
  for (const [name, value] of given) {
    const p = t.Parameters[name];
    if (!p) problems.push(`--parameter-overrides ${name}: the template has no such parameter`);
    else if (p.AllowedPattern && !value.includes('$') && !new RegExp(p.AllowedPattern).test(value)) problems.push(`${name}=${value}: does not match ${p.AllowedPattern}`);
  }
  for (const [name, p] of Object.entries(t.Parameters)) if (p.Default === undefined && !given.has(name)) problems.push(`${name}: required by the template, not given`);
  return problems;
}

describe('README "Deploy on AWS", walked through against the template', () => {
  const deploy = section('Deploy on AWS');
  const commands = [...deploy.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('the one command deploys the template with every required parameter and only parameters it has', () => {
    const sam = commands.filter((c) => c.startsWith('sam deploy'));
    expect(sam).toHaveLength(1);
    expect(samDeployProblems(sam[0]!, template)).toEqual([]);
    // The check itself notices what a newcomer would trip over.
    expect(samDeployProblems('sam deploy --template-file cloudformation/template.yml --stack-name x --capabilities CAPABILITY_IAM --parameter-overrides VpcId=vpc-1 GitlabUrl=https://x', template)).toEqual([
      '--template-file cloudformation/template.yml: not the stack\'s template',
      '--parameter-overrides GitlabUrl: the template has no such parameter',
      'SubnetIds: required by the template, not given',
      'GitLabUrl: required by the template, not given',
      'RunnerTokenSecretArn: required by the template, not given',
      'CoordinatorImage: required by the template, not given',
    ]);
  });

  it('the parameter table and the command together name every parameter, and only those', () => {
    const inTable = tableColumn(deploy, 'parameter');
    const inCommand = [...commands.find((c) => c.startsWith('sam deploy'))!.matchAll(/(\w+)=/g)].map((m) => m[1]!);
    expect(inTable.filter((p) => !(p in template.Parameters))).toEqual([]);
    expect(Object.keys(template.Parameters).filter((p) => !inTable.includes(p) && !inCommand.includes(p))).toEqual([]);
    for (const p of inTable) expect(template.Parameters[p]!.Default, `${p} is in the defaults table`).toBeDefined();
  });

  it('the outputs table lists exactly the template outputs, and every <Name> placeholder is an output or a parameter', () => {
    const listed = tableColumn(deploy, 'output');
    expect([...listed].sort()).toEqual(Object.keys(template.Outputs ?? {}).sort());
    const placeholders = [...deploy.matchAll(/<([A-Z][A-Za-z]+)>/g)].map((m) => m[1]!);
    expect(placeholders.length).toBeGreaterThan(0);
    expect(placeholders.filter((p) => !(p in (template.Outputs ?? {})) && !(p in template.Parameters))).toEqual([]);
  });

  it('names only fleetrunner commands and flags the CLI has, and the configuration variables it reads', () => {
    const uses = [...deploy.matchAll(/`(fleetrunner [^`]+)`/g)].map((m) => m[1]!);
    expect(uses.length).toBeGreaterThan(1);
    for (const use of uses) {
      const argv = use.split(/\s+/).slice(1);
      expect(HELP).toContain(`fleetrunner ${argv[0]}`);
      expect(() => parseCli(argv), use).not.toThrow();
    }
    for (const v of [ENV_FILE, ENV_YAML, ENV_SSM]) expect(deploy).toContain(`${v}=`);
    expect(deploy).toContain(DEFAULT_HEALTH_URL);
    // What the stack writes, as the README says it does.
    const env = JSON.stringify(template.Resources.TaskDefinition!.Properties);
    for (const said of ['onShutdown: handoff', 'metrics:\\n  listen: \\":9090\\"', 'name: dind', 'style: docker', '/fleetrunner/${FleetName}/runner-token']) expect(env).toContain(said);
  });

  it('the GitLab CI example deploys with the same command shape', () => {
    const ci = parse(readFileSync(join(ROOT, 'examples', 'gitlab-ci-deploy.yml'), 'utf8')) as Record<string, { script?: string[] }>;
    const sam = ci.deploy!.script!.filter((l) => l.startsWith('sam deploy'));
    expect(sam).toHaveLength(1);
    expect(samDeployProblems(sam[0]!, template)).toEqual([]);
    expect(ci.image!.script!.join('\n')).toContain('docker build -f docker/Dockerfile --build-arg FLEETRUNNER_REVISION=');
  });
});
