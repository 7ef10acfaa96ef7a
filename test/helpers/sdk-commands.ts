// The AWS calls the code can make: every `new XxxCommand(` in src/ whose class is imported from an
// @aws-sdk/client-* package, with the IAM action AWS authorizes it as.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface SdkCall {
  /** The IAM action, e.g. ec2:RunInstances. */
  action: string;
  command: string;
  file: string;
}

/** The IAM service prefix of each SDK client package the code uses. A package not listed fails the scan. */
const SERVICE_PREFIX: Record<string, string> = {
  'client-ec2': 'ec2',
  'client-ssm': 'ssm',
  'client-ecr': 'ecr',
  'client-s3': 's3',
  'client-dynamodb': 'dynamodb',
  'client-secrets-manager': 'secretsmanager',
  'client-ecs': 'ecs',
  'client-sts': 'sts',
};

/** Operations AWS authorizes under another action's name. */
const AUTHORIZED_AS: Record<string, string> = {
  // "To use HeadBucket, you must have permission to perform the s3:ListBucket action."
  's3:HeadBucket': 's3:ListBucket',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** The calls made by the TypeScript text of one file. */
export function callsIn(text: string, file: string): SdkCall[] {
  const calls: SdkCall[] = [];
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/([a-z0-9-]+)'/g)) {
    const pkg = m[2]!;
    const names = m[1]!
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '' && !n.startsWith('type '))
      .map((n) => n.split(/\s+as\s+/))
      .filter(([name]) => name!.endsWith('Command'));
    for (const [name, local = name] of names) {
      if (!new RegExp(`new\\s+${local}\\s*\\(`).test(text)) continue;
      const prefix = SERVICE_PREFIX[pkg];
      if (!prefix) throw new Error(`${file}: ${name} from @aws-sdk/${pkg}: add the package's IAM service prefix to test/helpers/sdk-commands.ts`);
      const action = `${prefix}:${name!.replace(/Command$/, '')}`;
      calls.push({ action: AUTHORIZED_AS[action] ?? action, command: name!, file });
    }
  }
  return calls;
}

export function sdkCalls(root: string): SdkCall[] {
  return sourceFiles(join(root, 'src')).flatMap((f) => callsIn(readFileSync(f, 'utf8'), relative(root, f)));
}
