// Reads cloudformation/template.yaml as CloudFormation does: the short-form tags (!Ref, !GetAtt, !Sub, !If, …)
// become their long forms ({ Ref }, { 'Fn::GetAtt': [resource, attribute] }, …), so the tests walk one shape.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type Tags } from 'yaml';

export const TEMPLATE_PATH = join(import.meta.dirname, '..', '..', 'cloudformation', 'template.yaml');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface Template {
  Parameters: Record<string, { Type: string; Default?: Json; AllowedValues?: Json[]; AllowedPattern?: string; Description?: string }>;
  Conditions?: Record<string, Json>;
  Resources: Record<string, { Type: string; Properties?: Record<string, Json>; Condition?: string; DependsOn?: string | string[]; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;
  Outputs?: Record<string, { Value: Json; Description?: string; Export?: Json }>;
}

/** CloudFormation's short forms: the function each names, and the YAML kinds it may tag. */
const FUNCTIONS: Record<string, { fn: string; kinds: ReadonlyArray<'scalar' | 'seq' | 'map'> }> = {
  '!Ref': { fn: 'Ref', kinds: ['scalar'] },
  '!Condition': { fn: 'Condition', kinds: ['scalar'] },
  '!GetAtt': { fn: 'Fn::GetAtt', kinds: ['scalar', 'seq'] },
  '!Sub': { fn: 'Fn::Sub', kinds: ['scalar', 'seq'] },
  '!If': { fn: 'Fn::If', kinds: ['seq'] },
  '!Equals': { fn: 'Fn::Equals', kinds: ['seq'] },
  '!Not': { fn: 'Fn::Not', kinds: ['seq'] },
  '!And': { fn: 'Fn::And', kinds: ['seq'] },
  '!Or': { fn: 'Fn::Or', kinds: ['seq'] },
  '!Join': { fn: 'Fn::Join', kinds: ['seq'] },
  '!Select': { fn: 'Fn::Select', kinds: ['seq'] },
  '!Split': { fn: 'Fn::Split', kinds: ['seq'] },
  '!FindInMap': { fn: 'Fn::FindInMap', kinds: ['seq'] },
  '!GetAZs': { fn: 'Fn::GetAZs', kinds: ['scalar'] },
  '!ImportValue': { fn: 'Fn::ImportValue', kinds: ['scalar', 'map'] },
  '!Base64': { fn: 'Fn::Base64', kinds: ['scalar', 'map'] },
  '!Cidr': { fn: 'Fn::Cidr', kinds: ['seq'] },
};

function cfnTags(): Tags {
  const tags: Tags = [];
  for (const [tag, { fn, kinds }] of Object.entries(FUNCTIONS)) {
    for (const kind of kinds) {
      if (kind === 'scalar') {
        // !GetAtt A.B is the scalar form of [A, B] (the attribute may itself contain dots).
        tags.push({ tag, resolve: (s: string) => ({ [fn]: fn === 'Fn::GetAtt' ? [s.slice(0, s.indexOf('.')), s.slice(s.indexOf('.') + 1)] : s }) });
      } else {
        tags.push({ tag, collection: kind, resolve: (node) => ({ [fn]: node.toJSON() }) });
      }
    }
  }
  return tags;
}

export function parseTemplate(text: string): Template {
  return parse(text, { customTags: cfnTags(), prettyErrors: true, uniqueKeys: true }) as Template;
}

export function loadTemplate(path = TEMPLATE_PATH): Template {
  return parseTemplate(readFileSync(path, 'utf8'));
}

/** Visits every value under `value`, with its path (for messages). */
export function walk(value: Json, visit: (v: Json, path: string) => void, path = ''): void {
  visit(value, path);
  if (Array.isArray(value)) value.forEach((v, i) => walk(v, visit, `${path}[${i}]`));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, visit, path ? `${path}.${k}` : k);
}

/** The one intrinsic function of an object such as { Ref: X } or { 'Fn::If': […] }, if it is one. */
export function intrinsic(v: Json): { fn: string; arg: Json } | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const fn = keys[0]!;
  return fn === 'Ref' || fn === 'Condition' || fn.startsWith('Fn::') ? { fn, arg: v[fn]! } : undefined;
}

/** The names a Sub string refers to: `${Name}` and `${Resource.Attribute}`, not the literal `${!…}`. */
export function subReferences(text: string): string[] {
  return [...text.matchAll(/\$\{([^}]*)\}/g)].map((m) => m[1]!).filter((n) => !n.startsWith('!'));
}

export const PSEUDO_PARAMETERS = ['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix'];
