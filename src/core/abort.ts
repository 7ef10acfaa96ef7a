// Signals made again and again under one long-lived signal (a loop's tick under its job's stop).
// AbortSignal.any would do, but each signal it makes leaves a weak reference on every source, kept as long
// as the source lives (measured on Node 20: 48 bytes a call): a job that ticks every 3 s for a day would
// carry 1.4 MB of them. A listener added and removed per tick leaves nothing.

/** An AbortController that also aborts (with the parent's reason) when `parent` does, until it is released:
 *  `release()` removes its listener from the parent and aborts it, with `reason` when given. */
export function childAbort(parent: AbortSignal): { signal: AbortSignal; abort(reason?: unknown): void; release(reason?: unknown): void } {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(parent.reason);
  if (parent.aborted) ctl.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    abort: (reason) => ctl.abort(reason),
    release: (reason) => {
      parent.removeEventListener('abort', onAbort);
      ctl.abort(reason);
    },
  };
}
