// Go's time.ParseDuration for RUNNER_SCRIPT_TIMEOUT / RUNNER_AFTER_SCRIPT_TIMEOUT ("10m", "1h30m", "1.5s").

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds, or undefined when `text` is not a Go duration. Negative durations are refused. */
export function parseGoDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  if (s === '' || s.startsWith('-')) return undefined;
  const body = s.startsWith('+') ? s.slice(1) : s;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < body.length) {
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? NaN);
    pos = re.lastIndex;
  }
  return pos === 0 || !Number.isFinite(total) ? undefined : Math.round(total);
}
