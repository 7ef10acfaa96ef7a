// Human units in config files, normalised once: durations to milliseconds, sizes to bytes.
// A bare number is neither: "30" could be seconds (gitlab-runner's check_interval), milliseconds (Node's
// timers) or kilobytes (gitlab-runner's output_limit). compile.ts refuses it with a message saying what
// to write instead, so a value is never read in a unit its author did not mean.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A YAML number ≥ 0, or a string that is only such a number (what `${VAR}` gives for VAR=30). */
export function isBareNumber(input: string | number): boolean {
  return typeof input === 'number' ? Number.isFinite(input) && input >= 0 : /^\s*\d+(\.\d+)?\s*$/.test(input);
}

/** "30s", "5m", "1h30m", "250ms". Returns ms, or undefined if malformed or a bare number (see isBareNumber). */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return undefined;
  const s = input.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  return matched === s.length && matched > 0 ? Math.round(total) : undefined;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, k: 1024, m: 1024 ** 2, g: 1024 ** 3,
};

/** "4MiB", "512KiB", "1GB", "4096B". Returns bytes, or undefined if malformed or a bare number (see isBareNumber). */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(input);
  if (!m) return undefined;
  const mult = SIZE_UNITS[m[2]!.toLowerCase()];
  return mult === undefined ? undefined : Math.round(Number(m[1]) * mult);
}
