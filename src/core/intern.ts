// Names every job's payload carries again: the ~70-120 predefined variable names, GitLab's ~50 failure
// reasons. JSON.parse makes fresh strings of them in each payload, ~4 KiB a job, held for its whole run.
// One copy of each serves every job. Only names go here, never values: a value may be a secret, and this
// table lives as long as the process.

/** Distinct names kept (user-defined variable names add to GitLab's own); past it, a name is not shared. */
const MAX_NAMES = 8192;
/** Longer strings are not names worth sharing. */
const MAX_NAME_LENGTH = 128;

const names = new Map<string, string>();

/** The one shared copy of `name` (the first seen). */
export function internName(name: string): string {
  const known = names.get(name);
  if (known !== undefined) return known;
  if (names.size < MAX_NAMES && name.length <= MAX_NAME_LENGTH) names.set(name, name);
  return name;
}
