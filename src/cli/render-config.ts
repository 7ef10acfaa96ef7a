// `fleetrunner render-config`: the configuration as the coordinator holds it after `${ENV}` interpolation,
// defaults and unit normalisation (durations in ms, sizes in bytes), with secrets masked. The same object
// is logged at start ("effective configuration"), so what a task runs on can be read from its log.

import { stringify } from 'yaml';
import type { FleetConfig } from '../config/index.js';
import { MASK, redact } from '../gitlab/index.js';

/** The config as plain data with every runner token and the registration token masked, and anything else shaped like
 *  a GitLab token (in `environment`, say) masked by redact(). */
export function redactedConfig(config: FleetConfig): Record<string, unknown> {
  const secrets = [config.gitlab.token, config.gitlab.registrationToken, ...config.runners.map((r) => r.token)];
  const masked = JSON.parse(redact(JSON.stringify(config), secrets)) as Record<string, unknown> & { gitlab: Record<string, unknown>; runners: Array<Record<string, unknown>> };
  // Whole values, whatever they look like (a short legacy registration token escapes redact's length floor).
  if (config.gitlab.token !== undefined) masked.gitlab.token = MASK;
  if (config.gitlab.registrationToken !== undefined) masked.gitlab.registrationToken = MASK;
  for (const r of masked.runners) if (r.token !== undefined) r.token = MASK;
  return masked;
}

export function renderConfig(config: FleetConfig, source: string): string {
  return `# fleetrunner: effective configuration from ${source}\n# (defaults applied; durations in ms, sizes in bytes; secrets masked)\n${stringify(redactedConfig(config), { lineWidth: 0 })}`;
}
