// cloudformation/template.yaml against AWS's resource specification, its own references, and what the
// coordinator relies on (ECS deployment settings for the handoff, the lease table's key, the config it writes).

import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/index.js';
import { LEASE_KEY_ATTRIBUTE } from '../../../src/providers/aws/dynamodb-lease.js';
import { awsSpec, specProblems, specResource } from '../../helpers/cfn-spec.js';
import { testToken } from '../../helpers/tokens.js';
import { intrinsic, loadTemplate, parseTemplate, PSEUDO_PARAMETERS, subReferences, walk, type Json, type Template } from '../../helpers/cfn-template.js';

const template = loadTemplate();
const db = awsSpec();

/** Every problem with the template's Ref, GetAtt, Sub and condition names. */
function referenceProblems(t: Template): string[] {
  const params = new Set(Object.keys(t.Parameters ?? {}));
  const resources = t.Resources;
  const conditions = new Set(Object.keys(t.Conditions ?? {}));
  const problems: string[] = [];
  const known = (name: string) => params.has(name) || name in resources || PSEUDO_PARAMETERS.includes(name);
  const getAtt = (resource: string, attribute: string, where: string) => {
    const r = resources[resource];
    if (!r) return problems.push(`${where}: GetAtt of unknown resource ${resource}`);
    const attrs = Object.keys(specResource(db, r.Type)?.attributes ?? {});
    if (!attrs.includes(attribute)) problems.push(`${where}: ${r.Type} has no attribute ${attribute} (has: ${attrs.join(', ')})`);
    return 0;
  };
  const visit = (v: Json, where: string) => {
    const fn = intrinsic(v);
    if (!fn) return;
    if (fn.fn === 'Ref' && !(typeof fn.arg === 'string' && known(fn.arg))) problems.push(`${where}: Ref to unknown ${JSON.stringify(fn.arg)}`);
    if (fn.fn === 'Fn::GetAtt') {
      const [r, a] = fn.arg as string[];
      getAtt(r!, a!, where);
    }
    if (fn.fn === 'Fn::If' || fn.fn === 'Condition') {
      const name = fn.fn === 'Condition' ? fn.arg : (fn.arg as Json[])[0];
      if (typeof name !== 'string' || !conditions.has(name)) problems.push(`${where}: unknown condition ${JSON.stringify(name)}`);
    }
    if (fn.fn === 'Fn::Sub') {
      const [text, vars] = typeof fn.arg === 'string' ? [fn.arg, {}] : (fn.arg as [string, Record<string, Json>]);
      for (const ref of subReferences(text)) {
        if (ref in vars) continue;
        const dot = ref.indexOf('.');
        if (dot > 0 && !ref.startsWith('AWS::')) getAtt(ref.slice(0, dot), ref.slice(dot + 1), where);
        else if (!known(ref)) problems.push(`${where}: \${${ref}} names nothing`);
      }
    }
  };
  walk(t.Resources as unknown as Json, visit, 'Resources');
  walk((t.Outputs ?? {}) as unknown as Json, visit, 'Outputs');
  walk((t.Conditions ?? {}) as unknown as Json, visit, 'Conditions');
  for (const [name, r] of Object.entries(resources)) if (r.Condition && !conditions.has(r.Condition)) problems.push(`Resources.${name}.Condition: unknown condition ${r.Condition}`);
  return problems;
}

/** The configuration the task definition writes, with CloudFormation's Sub done for example values. */
function renderedConfig(overrides: Record<string, string> = {}): string {
  const env = (template.Resources.TaskDefinition!.Properties!.ContainerDefinitions as Json[]).flatMap((c) => (c as { Environment: Json[] }).Environment);
  const branch = (intrinsic(env[0]!)!.arg as Json[])[2] as { Name: string; Value: { 'Fn::Sub': [string, Record<string, Json>] } };
  expect(branch.Name).toBe('FLEETRUNNER_CONFIG_YAML');
  const [text] = branch.Value['Fn::Sub'];
  const values: Record<string, string> = {
    GitLabUrl: 'https://gitlab.example.com',
    FleetName: 'fleetrunner',
    Concurrent: '10',
    ExecutorMaxMachines: '10',
    ExecutorAmiParameter: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64',
    ExecutorSpot: 'false',
    ExecutorRootVolumeGb: '30',
    ExecutorTags: '',
    PoolIdleCount: '0',
    PoolIdleTime: '10m',
    LeaseTable: 'fleetrunner-LeaseTable-ABC',
    CacheBucket: 'fleetrunner-cachebucket-abc',
    ExecutorSecurityGroup: 'sg-0123456789abcdef0',
    'ExecutorInstanceProfile.Arn': 'arn:aws:iam::123456789012:instance-profile/fleetrunner-ExecutorInstanceProfile-ABC',
    InstanceTypes: 'c6i.xlarge, m6i.xlarge',
    Subnets: 'subnet-0aaa1111, subnet-0bbb2222',
    RotatedTokenKey: '',
    RootVolumeKey: '',
    ...overrides,
  };
  return text.replace(/\$\{([^}]*)\}/g, (_, name: string) => (name.startsWith('!') ? `\${${name.slice(1)}}` : (values[name] ?? `<unset ${name}>`)));
}

describe('cloudformation/template.yaml', () => {
  it('parses with CloudFormation short tags into their long forms', () => {
    const t = parseTemplate('A: !Ref X\nB: !GetAtt R.Arn\nC: !Sub "${X}"\nD: !If [C, 1, 2]\nE: !Join ["", [a, !Ref Y]]\n');
    expect(t).toEqual({ A: { Ref: 'X' }, B: { 'Fn::GetAtt': ['R', 'Arn'] }, C: { 'Fn::Sub': '${X}' }, D: { 'Fn::If': ['C', 1, 2] }, E: { 'Fn::Join': ['', ['a', { Ref: 'Y' }]] } });
    expect(Object.keys(template.Resources).length).toBeGreaterThan(10);
  });

  it('uses only resource types and properties of the published specification, with their shapes', () => {
    expect(specProblems(template, db)).toEqual([]);
  });

  it('the specification check finds what is wrong: an unknown type, property, a wrong shape, a missing required property', () => {
    const bad = parseTemplate(`
Resources:
  A: { Type: AWS::Nope::Thing }
  B: { Type: AWS::Logs::LogGroup, Properties: { RetentionDays: 3 } }
  C: { Type: AWS::ECS::Cluster, Properties: { ClusterSettings: { Name: containerInsights } } }
  D: { Type: AWS::IAM::InstanceProfile, Properties: {} }
  E: { Type: AWS::ECS::Service, Properties: { DeploymentConfiguration: { MinimumHealthyPercent: lots } } }
`);
    const problems = specProblems(bad, db).join('\n');
    expect(problems).toContain('A: no resource type AWS::Nope::Thing');
    expect(problems).toContain('B.RetentionDays: no such property');
    expect(problems).toContain('C.ClusterSettings: expected array of object');
    expect(problems).toContain('D.Roles: required property missing');
    expect(problems).toContain('E.DeploymentConfiguration.MinimumHealthyPercent: expected integer');
  });

  it('resolves every Ref, GetAtt, Sub variable and condition', () => {
    expect(referenceProblems(template)).toEqual([]);
    const bad = parseTemplate(`
Parameters: { P: { Type: String } }
Resources:
  R:
    Type: AWS::Logs::LogGroup
    Properties: { LogGroupName: !Sub '\${P}-\${Q}-\${R.Nope}-\${!Literal}', KmsKeyId: !Ref Missing, DataProtectionPolicy: !If [NoSuch, {}, {}] }
Outputs: { O: { Value: !GetAtt Gone.Arn } }
`);
    expect(referenceProblems(bad)).toEqual([
      'Resources.R.Properties.LogGroupName: ${Q} names nothing',
      'Resources.R.Properties.LogGroupName: AWS::Logs::LogGroup has no attribute Nope (has: Arn)',
      'Resources.R.Properties.KmsKeyId: Ref to unknown "Missing"',
      'Resources.R.Properties.DataProtectionPolicy: unknown condition "NoSuch"',
      'Outputs.O.Value: GetAtt of unknown resource Gone',
    ]);
  });

  it('uses every parameter', () => {
    const text = JSON.stringify(template.Resources) + JSON.stringify(template.Outputs) + JSON.stringify(template.Conditions);
    const unused = Object.keys(template.Parameters).filter((p) => !text.includes(`"Ref":"${p}"`) && !text.includes(`\${${p}}`));
    expect(unused).toEqual([]);
  });

  it('runs one coordinator task with the deployment settings the handoff relies on', () => {
    const service = template.Resources.Service!.Properties!;
    expect(service.DesiredCount).toBe(1);
    expect(service.DeploymentConfiguration).toMatchObject({ MinimumHealthyPercent: 0, MaximumPercent: 100 });
    const container = (template.Resources.TaskDefinition!.Properties!.ContainerDefinitions as Json[])[0] as Record<string, Json>;
    // ECS sends SIGKILL at stopTimeout (120 s at most): the handoff (handoffTimeout) must be done well before.
    expect(container.StopTimeout).toBe(120);
    const config = parseConfigText(renderedConfig(), { RUNNER_TOKEN: testToken('glrt-') });
    expect(config.handoffTimeoutMs + 30_000).toBeLessThanOrEqual(120_000);
    expect(config.onShutdown).toBe('handoff');
    expect((container.HealthCheck as { Command: string[] }).Command).toEqual(['CMD', 'node', '/app/dist/cli/healthcheck.js']);
  });

  it('keeps the log with a retention and the lease in a table keyed as the lease code reads it', () => {
    expect(template.Resources.LogGroup!.Properties!.RetentionInDays).toEqual({ Ref: 'LogRetentionDays' });
    const table = template.Resources.LeaseTable!.Properties!;
    expect(table.KeySchema).toEqual([{ AttributeName: LEASE_KEY_ATTRIBUTE, KeyType: 'HASH' }]);
    expect(table.AttributeDefinitions).toEqual([{ AttributeName: LEASE_KEY_ATTRIBUTE, AttributeType: 'S' }]);
  });

  it('lets SSH reach the executors only from the coordinator security group', () => {
    const ingress = template.Resources.ExecutorSecurityGroup!.Properties!.SecurityGroupIngress as Json[];
    expect(ingress).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, SourceSecurityGroupId: { Ref: 'CoordinatorSecurityGroup' } })]);
    expect(template.Resources.CoordinatorSecurityGroup!.Properties!.SecurityGroupIngress).toBeUndefined();
  });

  it('gives the executor instances ECR read and nothing else', () => {
    const role = template.Resources.ExecutorRole!.Properties!;
    expect(role.ManagedPolicyArns).toEqual([{ 'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly' }]);
    expect(role.Policies).toBeUndefined();
    expect(template.Resources.ExecutorInstanceProfile!.Properties!.Roles).toEqual([{ Ref: 'ExecutorRole' }]);
  });

  it('injects the runner token from Secrets Manager, never as a plain value', () => {
    const container = (template.Resources.TaskDefinition!.Properties!.ContainerDefinitions as Json[])[0] as Record<string, Json>;
    expect(container.Secrets).toEqual([{ Name: 'RUNNER_TOKEN', ValueFrom: { Ref: 'RunnerTokenSecretArn' } }]);
    expect(renderedConfig()).toContain('token: ${RUNNER_TOKEN}');
  });

  it('writes a configuration fleetrunner accepts, with the stack resources in it', () => {
    const config = parseConfigText(renderedConfig({ ExecutorTags: 'team: platform, env: prod', RotatedTokenKey: 'kmsKeyId: arn:aws:kms:eu-west-1:123456789012:key/abc', RootVolumeKey: 'kmsKeyId: arn:aws:kms:eu-west-1:123456789012:key/abc' }), { RUNNER_TOKEN: testToken('glrt-') });
    expect(config.lease?.dynamodb?.table).toBe('fleetrunner-LeaseTable-ABC');
    expect(config.metrics.listen).toBe(':9090');
    const e = config.executors[0]!;
    expect(e.ec2?.subnets).toEqual(['subnet-0aaa1111', 'subnet-0bbb2222']);
    expect(e.ec2?.instanceTypes).toEqual(['c6i.xlarge', 'm6i.xlarge']);
    expect(e.ec2?.securityGroups).toEqual(['sg-0123456789abcdef0']);
    expect(e.ec2?.tags).toEqual({ team: 'platform', env: 'prod' });
    expect(e.ec2?.rootVolume.kmsKeyId).toBe('arn:aws:kms:eu-west-1:123456789012:key/abc');
    expect(e.cache?.s3?.bucket).toBe('fleetrunner-cachebucket-abc');
    expect(config.gitlab.rotatedToken?.ssmParameter).toBe('/fleetrunner/fleetrunner/runner-token');
    expect(parseConfigText(renderedConfig(), { RUNNER_TOKEN: testToken('glrt-') }).executors[0]!.ec2?.tags).toEqual({});
  });
});
