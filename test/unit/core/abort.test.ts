import { describe, expect, it, vi } from 'vitest';

import { childAbort } from '../../../src/core/abort.js';

describe('childAbort', () => {
  it('aborts with the parent, with its reason', () => {
    const parent = new AbortController();
    const child = childAbort(parent.signal);
    parent.abort(new Error('stop'));
    expect(child.signal.aborted).toBe(true);
    expect((child.signal.reason as Error).message).toBe('stop');
  });

  it('is aborted at once under a parent that already was', () => {
    const parent = new AbortController();
    parent.abort('gone');
    expect(childAbort(parent.signal).signal.reason).toBe('gone');
  });

  it('aborts alone without touching the parent', () => {
    const parent = new AbortController();
    const child = childAbort(parent.signal);
    child.abort('tick');
    expect(child.signal.reason).toBe('tick');
    expect(parent.signal.aborted).toBe(false);
  });

  it('once released, leaves no listener on the parent and no longer follows it', () => {
    const parent = new AbortController();
    let added = 0;
    let removed = 0;
    const add = parent.signal.addEventListener.bind(parent.signal);
    const remove = parent.signal.removeEventListener.bind(parent.signal);
    parent.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
    parent.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
    for (let i = 0; i < 3; i++) childAbort(parent.signal).release();
    expect([added, removed]).toEqual([3, 3]);
    const child = childAbort(parent.signal);
    child.release();
    parent.abort('later');
    expect(child.signal.aborted).toBe(false);
  });

  it('many children at once under one parent raise no leak warning', () => {
    const parent = new AbortController();
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      const children = Array.from({ length: 50 }, () => childAbort(parent.signal));
      expect(warn).not.toHaveBeenCalled();
      parent.abort('all');
      expect(children.every((c) => c.signal.aborted)).toBe(true);
    } finally {
      warn.mockRestore();
    }
  });
});
