// The stages of the VM run, in order. A failure is a VmStageError naming its stage, so a red CI run says at
// once whether the guest image, the boot, cloud-init, the SSH pin, the DinD build or the push went wrong.

export const VM_STAGES = ['setup', 'image build', 'launch', 'boot', 'SSH pin', 'cloud-init', 'ready', 'DinD', 'push', 'pull back', 'terminate'] as const;
export type VmStage = (typeof VM_STAGES)[number];

export class VmStageError extends Error {
  constructor(
    readonly stage: VmStage,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[stage: ${stage}] ${message}`, options);
    this.name = 'VmStageError';
  }
}

/** Runs `fn`; any error it throws that is not already a VmStageError becomes one of `stage`. */
export async function inStage<T>(stage: VmStage, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof VmStageError) throw e;
    throw new VmStageError(stage, e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** The last `n` lines of `text`, indented, for error messages. */
export function tail(text: string, n = 20): string {
  const lines = text.replace(/\r/g, '').split('\n');
  return lines
    .slice(-n)
    .map((l) => `    ${l}`)
    .join('\n');
}
