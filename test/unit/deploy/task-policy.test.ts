// The coordinator's task role against the code: every AWS call the code can make is allowed, nothing else
// is, and no statement uses a '*' resource where AWS accepts an ARN or a condition.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { intrinsic, loadTemplate, type Json } from '../../helpers/cfn-template.js';
import { callsIn, sdkCalls } from '../../helpers/sdk-commands.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const template = loadTemplate();

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: Json;
  Condition?: Record<string, Record<string, Json>>;
}

/** A role's inline policy statements, both branches of every Fn::If (a condition that is false adds nothing). */
function statements(role: string): Statement[] {
  const policies = template.Resources[role]!.Properties!.Policies as Array<{ PolicyDocument: { Statement: Json[] } }>;
  return policies.flatMap((p) =>
    p.PolicyDocument.Statement.flatMap((s) => {
      const fn = intrinsic(s);
      if (fn?.fn !== 'Fn::If') return [s as unknown as Statement];
      return (fn.arg as Json[]).slice(1).filter((b) => intrinsic(b)?.arg !== 'AWS::NoValue') as unknown as Statement[];
    }),
  );
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

/** Actions AWS checks on our behalf when the code makes a call, with the call and why. */
const IMPLIED: ReadonlyArray<{ action: string; by: string; why: string }> = [
  { action: 'iam:PassRole', by: 'ec2:RunInstances', why: 'the launch passes the executor instance profile (ec2.iamInstanceProfile)' },
  { action: 'sts:TagSession', by: 'sts:AssumeRole', why: 'a job role session carries the gitlab-project, gitlab-job and gitlab-pipeline tags' },
  { action: 'kms:Encrypt', by: 'ssm:PutParameter', why: 'the rotated-token SecureString under a customer-managed key (KmsKeyArn)' },
  { action: 'kms:Decrypt', by: 'ssm:GetParameter', why: 'reading that SecureString back; EC2 also decrypts the volume key at launch' },
  { action: 'iam:PassRole', by: 'ecs:RunTask', why: 'a Fargate job task runs with its execution role and its executor\'s jobRole' },
  { action: 'ecs:TagResource', by: 'ecs:RunTask', why: 'RunTask and RegisterTaskDefinition tag what they create (ownership tags)' },
  { action: 'kms:GenerateDataKeyWithoutPlaintext', by: 'ec2:RunInstances', why: 'an encrypted root volume under a customer-managed key' },
  { action: 'kms:ReEncryptFrom', by: 'ec2:RunInstances', why: 'EBS re-encrypts the volume key from the AMI snapshot' },
  { action: 'kms:ReEncryptTo', by: 'ec2:RunInstances', why: 'the same, to the customer-managed key' },
  { action: 'kms:DescribeKey', by: 'ec2:RunInstances', why: 'EBS checks the key it is given' },
  { action: 'kms:CreateGrant', by: 'ec2:RunInstances', why: 'EBS keeps a grant to use the key while the volume exists' },
];

/** Actions for which '*' is the only resource AWS accepts (no resource-level permissions), with that reason. */
const STAR_ALLOWED: Record<string, string> = {
  'ec2:DescribeInstances': 'EC2 Describe* calls support no resource-level permissions (listing the fleet by tag)',
  'ec2:DescribeImages': 'EC2 Describe* calls support no resource-level permissions (preflight: the AMI exists)',
  'ec2:DescribeSecurityGroups': 'EC2 Describe* calls support no resource-level permissions (preflight: the groups exist)',
  'ec2:DescribeAvailabilityZones': 'EC2 Describe* calls support no resource-level permissions (preflight: credentials work)',
  'ecs:ListTasks': 'ListTasks names no task; the statement is bounded by the ecs:cluster condition',
  'ecs:RegisterTaskDefinition': 'task definition calls support no resource-level permissions',
  'ecs:DeregisterTaskDefinition': 'task definition calls support no resource-level permissions',
  'ecs:DescribeTaskDefinition': 'task definition calls support no resource-level permissions',
  'ecs:TagResource': 'granted only with ecs:CreateAction RunTask or RegisterTaskDefinition (tags at creation)',
  'ecr:GetAuthorizationToken': 'a registry login is account-wide: the action has no resource type',
};

/** The difference between what the code calls and what a policy grants: calls not allowed, grants not needed. */
function mismatch(calls: ReadonlyArray<{ action: string; command: string; file: string }>, granted: ReadonlySet<string>): { missing: string[]; extra: string[] } {
  const needed = new Set(calls.map((c) => c.action));
  const implied = new Set(IMPLIED.filter((i) => needed.has(i.by)).map((i) => i.action));
  return {
    missing: calls.filter((c) => !granted.has(c.action)).map((c) => `${c.action} (${c.command} in ${c.file})`),
    extra: [...granted].filter((a) => !needed.has(a) && !implied.has(a)),
  };
}

describe('the coordinator task role', () => {
  const calls = sdkCalls(ROOT);
  const granted = new Set(statements('TaskRole').flatMap(actionsOf));

  it('finds the calls the code makes, from the SDK imports under src/', () => {
    const actions = new Set(calls.map((c) => c.action));
    for (const a of ['ec2:RunInstances', 'ec2:TerminateInstances', 'ec2:CreateTags', 'dynamodb:UpdateItem', 's3:ListBucket']) expect(actions).toContain(a);
    expect(callsIn(`import {\n  GetItemCommand,\n  type AttributeValue,\n  UpdateItemCommand as Update,\n} from '@aws-sdk/client-dynamodb';\nnew GetItemCommand({});\nnew Update({});`, 'x.ts').map((c) => c.action)).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // Imported but never sent: not a call.
    expect(callsIn(`import { GetItemCommand } from '@aws-sdk/client-dynamodb';\nconst x: GetItemCommand | undefined = undefined;`, 'x.ts')).toEqual([]);
    expect(() => callsIn(`import { ListTopicsCommand } from '@aws-sdk/client-sns';\nnew ListTopicsCommand({});`, 'x.ts')).toThrow(/client-sns/);
  });

  it('allows every AWS call the code can make', () => {
    expect(mismatch(calls, granted).missing).toEqual([]);
  });

  it('allows nothing the code does not call (or AWS checks on its behalf)', () => {
    expect(mismatch(calls, granted).extra).toEqual([]);
    // And no implied action is listed for a call the code no longer makes.
    const needed = new Set(calls.map((c) => c.action));
    expect(IMPLIED.filter((i) => !needed.has(i.by)).map((i) => i.action)).toEqual([]);
  });

  it('the comparison fails in either direction: a call the policy lacks, a grant no call needs', () => {
    const run = { action: 'ec2:RunInstances', command: 'RunInstancesCommand', file: 'src/x.ts' };
    const task = { action: 'ecs:RunTask', command: 'RunTaskCommand', file: 'src/providers/fargate/x.ts' };
    expect(mismatch([run, task], new Set(['ec2:RunInstances', 'iam:PassRole', 'ec2:DeleteVolume']))).toEqual({
      missing: ['ecs:RunTask (RunTaskCommand in src/providers/fargate/x.ts)'],
      extra: ['ec2:DeleteVolume'],
    });
  });

  it("uses '*' only for actions that have no resource-level permissions", () => {
    for (const role of ['TaskRole', 'ExecutionRole']) {
      for (const s of statements(role)) {
        if (!resourcesOf(s).includes('*')) continue;
        const unjustified = actionsOf(s).filter((a) => !(a in STAR_ALLOWED));
        expect(unjustified, `${role} ${s.Sid}`).toEqual([]);
      }
    }
  });

  it('launches only with the fleet tag and terminates or relabels only instances carrying it', () => {
    const all = statements('TaskRole');
    const launchTagged = all.filter((s) => actionsOf(s).includes('ec2:RunInstances') && resourcesOf(s).some((r) => /instance\/\*|volume\/\*/.test(JSON.stringify(r))));
    expect(launchTagged.length).toBeGreaterThan(0);
    for (const s of launchTagged) expect(s.Condition?.StringEquals?.['aws:RequestTag/fleetrunner:fleet']).toEqual({ Ref: 'FleetName' });
    const onExisting = all.filter((s) => actionsOf(s).includes('ec2:TerminateInstances') || (actionsOf(s).includes('ec2:CreateTags') && !s.Condition?.StringEquals?.['ec2:CreateAction']));
    expect(onExisting.length).toBe(2);
    for (const s of onExisting) expect(s.Condition?.StringEquals?.['ec2:ResourceTag/fleetrunner:fleet']).toEqual({ Ref: 'FleetName' });
    // PassRole: the executor role to EC2 only; the Fargate job execution role and the job roles to ECS tasks only.
    const pass = all.filter((s) => actionsOf(s).includes('iam:PassRole'));
    expect(pass.map((s) => s.Resource)).toEqual([{ 'Fn::GetAtt': ['ExecutorRole', 'Arn'] }, { 'Fn::GetAtt': ['FargateJobExecutionRole', 'Arn'] }, { Ref: 'JobRoleArns' }]);
    expect(pass.map((s) => s.Condition?.StringEquals?.['iam:PassedToService'])).toEqual(['ec2.amazonaws.com', 'ecs-tasks.amazonaws.com', 'ecs-tasks.amazonaws.com']);
  });

  it('reaches the lease table only for the fleet\'s own item, and the runner token secret only from the execution role', () => {
    const lease = statements('TaskRole').find((s) => actionsOf(s).includes('dynamodb:UpdateItem'))!;
    expect(lease.Resource).toEqual({ 'Fn::GetAtt': ['LeaseTable', 'Arn'] });
    expect(lease.Condition?.['ForAllValues:StringEquals']?.['dynamodb:LeadingKeys']).toEqual([{ Ref: 'FleetName' }]);
    expect(granted.has('secretsmanager:GetSecretValue')).toBe(false);
    const secret = statements('ExecutionRole').filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(secret.map((s) => s.Resource)).toEqual([{ Ref: 'RunnerTokenSecretArn' }]);
  });
});
