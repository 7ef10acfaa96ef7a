// Signals made again and again under one long-lived signal (a loop's tick under its job's stop, a machine's wait
// under the coordinator's shutdown).
// AbortSignal.any would do, but each signal it makes leaves a weak reference on every source, kept as long
// as the source lives (measured on Node 20: 48 bytes a call): a job that ticks every 3 s for a day would
// carry 1.4 MB of them. A listener added and removed per tick leaves nothing.
// A parent may have many children at once (every machine booting in a burst waits under the shutdown
// signal), so its listener count is not a leak sign: Node's warning past ten is turned off for it.

import { setMaxListeners } from 'node:events';

/** An AbortController that also aborts (with the parent's reason) when `parent` does, until `release()`
 *  removes its listener from the parent (the child is left as it is: abort it too when its waits must end). */
export interface ChildAbort {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
  release(): void;
}

/** Parents whose leak warning is off already (setMaxListeners costs ~20 µs a call; a tick makes a child). */
const unlimited = new WeakSet<AbortSignal>();

export function childAbort(parent: AbortSignal): ChildAbort {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(parent.reason);
  if (parent.aborted) ctl.abort(parent.reason);
  else {
    if (!unlimited.has(parent)) {
      setMaxListeners(0, parent);
      unlimited.add(parent);
    }
    parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: ctl.signal,
    abort: (reason) => ctl.abort(reason),
    release: () => parent.removeEventListener('abort', onAbort),
  };
}
