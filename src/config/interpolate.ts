// ${ENV_VAR} interpolation in string values, so secrets live in the environment, not in the file.
// `$${X}` stays a literal `${X}`. A missing variable is an error naming the key path.

import { ConfigError } from '../core/errors.js';

export function interpolateEnv(value: unknown, env: Record<string, string | undefined>, path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped, name: string, fallback?: string) => {
      if (escaped) return whole.slice(1);
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(path, `environment variable ${name} is not set (referenced as \${${name}})`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}
