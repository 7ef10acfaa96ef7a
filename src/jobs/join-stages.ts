// Several consecutive stages as one script, for an executor that pays per remote process: the predefined
// stages before the user's script (prepare_script, get_sources, restore_cache, download_artifacts) have
// the same bounds and the same rule (the first failure skips everything after it), so one shell can run
// them in order. The joined script ends with the first failing stage's status, exactly as running them one
// by one would, and every stage's section is closed however it ends.

import type { Stage } from '../core/plan.js';

/** How a stage script from ShellWriter.finish ends (its body's status): a stage that ends so is run in the
 *  joined shell itself, its section closed by hand after it. */
const STAGE_END = 'exit "$?"\n';
/** After such a stage: its EXIT trap (the section end) fired by hand, then the first failure ends it all. */
const INLINE_END = '_fr_rc=$?; trap - EXIT; _fr_section_end; if [ "$_fr_rc" -ne 0 ]; then exit "$_fr_rc"; fi';

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
      for (const s of joined) {
        const script = s.script;
        if (script.endsWith(STAGE_END)) {
          // No subshell of its own (a fork, 3 ms on the bench's machine, per stage on every job's path): the
          // stage's body already runs in one (its `eval '( … )'`); what the stage itself sets at its top
          // level is its section's trap and function, which the next stage sets again.
          parts.push(script.slice(0, -STAGE_END.length).replace(/\n$/, ''), INLINE_END);
        } else {
          // Not `( … ) || exit`: on the left of || a shell ignores errexit for everything inside, so the
          // stage's own `set -e` would stop working.
          parts.push('(', script.replace(/\n$/, ''), ')', '_fr_rc=$?; if [ "$_fr_rc" -ne 0 ]; then exit "$_fr_rc"; fi');
        }
      }
      parts.push('exit 0');
      return `${parts.join('\n')}\n`;
    },
  };
}
