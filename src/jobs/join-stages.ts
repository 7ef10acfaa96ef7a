// Several consecutive stages as one script, for an executor that pays per remote process: the predefined
// stages before the user's script (prepare_script, get_sources, restore_cache, download_artifacts) have
// the same bounds and the same rule (the first failure skips everything after it), so one shell can run
// them in order. Each keeps its own subshell, so its section markers, traps and exit stay its own; the
// joined script ends with the first failing stage's status, exactly as running them one by one would.

import type { Stage } from '../core/plan.js';

export function joinStages(stages: readonly Stage[]): Stage {
  const [first] = stages;
  if (!first) throw new TypeError('joinStages: no stages');
  if (stages.length === 1) return first;
  const phases = new Set(stages.map((s) => s.phase));
  if (phases.size !== 1) throw new TypeError(`joinStages: stages of different phases (${[...phases].join(', ')})`);
  const joined = [...stages];
  // Rendered when asked for, as each stage's own script is (plan.ts): the job keeps no copy while it runs.
  return {
    name: stages.map((s) => s.name).join('+'),
    phase: first.phase,
    get script() {
      const parts = ["trap 'exit 1' TERM"];
      // Not `( … ) || exit`: on the left of || a shell ignores errexit for everything inside, so the
      // stage's own `set -e` would stop working.
      for (const s of joined) parts.push('(', s.script.replace(/\n$/, ''), ')', '_fr_rc=$?; if [ "$_fr_rc" -ne 0 ]; then exit "$_fr_rc"; fi');
      parts.push('exit 0');
      return `${parts.join('\n')}\n`;
    },
  };
}
