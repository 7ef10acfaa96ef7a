// Checks a template's resources against AWS's published CloudFormation resource specification, as the
// @aws-cdk/aws-service-spec package carries it (the CDK generates its L1 constructs from the same data):
// every type exists, every property exists with the right shape, required properties are present.
// Intrinsic functions stand for values only CloudFormation can compute; `Fn::If` is checked on both branches.

import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';
import type { PropertyType, Resource, SpecDatabase } from '@aws-cdk/service-spec-types';
import { intrinsic, type Json, type Template } from './cfn-template.js';

let cached: SpecDatabase | undefined;
/** The specification (about a second to load: once per test file). */
export function awsSpec(): SpecDatabase {
  return (cached ??= loadAwsServiceSpecSync());
}

export function specResource(db: SpecDatabase, type: string): Resource | undefined {
  const found = db.lookup('resource', 'cloudFormationType', 'equals', type);
  return found.length === 1 ? found[0] : undefined;
}

const RESOURCE_KEYS = new Set(['Type', 'Properties', 'Condition', 'DependsOn', 'DeletionPolicy', 'UpdateReplacePolicy', 'Metadata', 'CreationPolicy', 'UpdatePolicy']);

type Props = Record<string, { type: PropertyType; required?: boolean }>;

function describe(t: PropertyType): string {
  switch (t.type) {
    case 'array':
    case 'map':
      return `${t.type} of ${describe(t.element)}`;
    case 'union':
      return t.types.map(describe).join(' | ');
    case 'ref':
      return 'object';
    default:
      return t.type;
  }
}

/** Problems of `value` as a `type`, each with its path; empty when it fits. */
function checkValue(db: SpecDatabase, value: Json, type: PropertyType, path: string): string[] {
  const fn = intrinsic(value);
  if (fn) {
    if (fn.fn === 'Fn::If' && Array.isArray(fn.arg)) {
      return fn.arg.slice(1).flatMap((branch, i) => (intrinsic(branch)?.fn === 'Ref' && intrinsic(branch)?.arg === 'AWS::NoValue' ? [] : checkValue(db, branch, type, `${path}<if:${i === 0 ? 'then' : 'else'}>`)));
    }
    return []; // computed by CloudFormation
  }
  const bad = (what: string) => [`${path}: expected ${describe(type)}, got ${what}`];
  const shown = JSON.stringify(value)?.slice(0, 60);
  switch (type.type) {
    case 'string':
    case 'date-time':
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        if (type.type === 'string' && type.allowedValues && typeof value === 'string' && !type.allowedValues.includes(value)) return [`${path}: ${shown} is not one of ${type.allowedValues.join(', ')}`];
        return [];
      }
      return bad(shown ?? 'nothing');
    case 'number':
    case 'integer':
      if (typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value))) return [];
      return bad(shown ?? 'nothing');
    case 'boolean':
      return typeof value === 'boolean' || value === 'true' || value === 'false' ? [] : bad(shown ?? 'nothing');
    case 'json':
      return [];
    case 'null':
      return value === null ? [] : bad(shown ?? 'nothing');
    case 'tag':
      return checkObject(db, value, { Key: { type: { type: 'string' }, required: true }, Value: { type: { type: 'string' }, required: true } }, path);
    case 'ref':
      return checkObject(db, value, db.get('typeDefinition', type.reference).properties as Props, path);
    case 'array':
      return Array.isArray(value) ? value.flatMap((v, i) => checkValue(db, v, type.element, `${path}[${i}]`)) : bad(shown ?? 'nothing');
    case 'map':
      return value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.entries(value).flatMap(([k, v]) => checkValue(db, v, type.element, `${path}.${k}`)) : bad(shown ?? 'nothing');
    case 'union': {
      const attempts = type.types.map((t) => checkValue(db, value, t, path));
      return attempts.some((a) => a.length === 0) ? [] : attempts.reduce((a, b) => (a.length <= b.length ? a : b));
    }
  }
}

function checkObject(db: SpecDatabase, value: Json, props: Props, path: string): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path}: expected an object, got ${JSON.stringify(value)?.slice(0, 60)}`];
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const prop = props[key];
    if (!prop) problems.push(`${path}.${key}: no such property (known: ${Object.keys(props).sort().join(', ')})`);
    else problems.push(...checkValue(db, v, prop.type, `${path}.${key}`));
  }
  for (const [key, prop] of Object.entries(props)) if (prop.required && !(key in value)) problems.push(`${path}.${key}: required property missing`);
  return problems;
}

/** Every problem of the template's resources against the specification. */
export function specProblems(template: Template, db = awsSpec()): string[] {
  const problems: string[] = [];
  for (const [name, resource] of Object.entries(template.Resources)) {
    for (const key of Object.keys(resource)) if (!RESOURCE_KEYS.has(key)) problems.push(`${name}.${key}: not a resource attribute`);
    const spec = specResource(db, resource.Type);
    if (!spec) {
      problems.push(`${name}: no resource type ${resource.Type} in the specification`);
      continue;
    }
    problems.push(...checkObject(db, (resource.Properties ?? {}) as Json, spec.properties as Props, name));
  }
  return problems;
}
