// `fleetrunner demo`: the fake GitLab with a sample project and pipeline, the real coordinator (the built
// CLI, as a child process) with the local provider, progress on the terminal, logs kept on disk.
// Exits 0 when every job ended as expected and the fake GitLab saw no protocol violation.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FakeGitLab, TERMINAL_STATES, type JobView } from '../fakegitlab/index.js';

const BIN = fileURLToPath(new URL('../../bin/fleetrunner.js', import.meta.url));
const GREEN = '\x1b[32m';
const RED = '\x1b[31m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

interface Expectation {
  state: 'success' | 'failed';
  reason?: string;
  exitCode?: number;
  traceHas?: string[];
  traceLacks?: string[];
}

export async function runDemo(_opts: { keep?: boolean } = {}): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetrunner-demo-'));
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`fleetrunner demo — working directory ${dir}`);
  const fake = new FakeGitLab({ traceUpdateIntervalS: 1 });
  await fake.start();
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const runner = fake.addRunner();
    const secret = `demo-${randomBytes(9).toString('hex')}`;
    const project = await fake.createProject({
      path: 'demo/hello-fleet',
      files: {
        'README.md': '# hello-fleet\nA sample project for the fleetrunner demo.\n',
        'build.sh': { content: '#!/bin/sh\nset -e\nmkdir -p dist\necho "hello-fleet built from $(git rev-parse --short HEAD)" > dist/app.txt\necho "built dist/app.txt"\n', executable: true },
      },
    });
    const pipeline = await fake.createPipeline(project, [
      { name: 'build', stage: 'build', script: ['./build.sh'], artifacts: { paths: ['dist/'] } },
      { name: 'secret', stage: 'build', variables: { DEPLOY_KEY: { value: secret, masked: true } }, script: ['echo "deploying with key $DEPLOY_KEY"'] },
      { name: 'test', stage: 'test', dependencies: ['build'], script: ['cat dist/app.txt', 'grep -q hello-fleet dist/app.txt'] },
      { name: 'lint', stage: 'test', script: ['echo "checking style..."', 'exit 3'], after_script: ['echo "after_script ran with CI_JOB_STATUS=$CI_JOB_STATUS"'] },
    ]);
    const expected: Record<string, Expectation> = {
      build: { state: 'success', traceHas: ['built dist/app.txt', 'Uploading artifacts'] },
      secret: { state: 'success', traceHas: ['deploying with key [MASKED]'], traceLacks: [secret] },
      test: { state: 'success', traceHas: ['hello-fleet built from'] },
      lint: { state: 'failed', reason: 'script_failure', exitCode: 3, traceHas: ['after_script ran with CI_JOB_STATUS=failed'] },
    };

    const configPath = join(dir, 'fleetrunner.yaml');
    await writeFile(
      configPath,
      [
        'gitlab:',
        `  url: ${fake.url}`,
        '  token: ${DEMO_RUNNER_TOKEN}',
        'concurrent: 2',
        `stateDir: ${join(dir, 'state')}`,
        'executors:',
        '  - name: local',
        '    provider: local',
        '    style: shell',
        '    maxMachines: 2',
        '    local:',
        `      root: ${join(dir, 'machines')}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const logPath = join(dir, 'coordinator.log');
    const log = createWriteStream(logPath);
    say(`fake GitLab at ${fake.url}; starting the coordinator: fleetrunner run --config ${configPath}`);
    child = spawn(process.execPath, [BIN, 'run', '--config', configPath], {
      env: { ...process.env, DEMO_RUNNER_TOKEN: runner.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

    // Progress: print each job's state changes until the pipeline is done.
    const seen = new Map<number, string>();
    const deadline = Date.now() + 180_000;
    let jobs: JobView[] = [];
    for (;;) {
      jobs = fake.jobsOf(pipeline);
      for (const j of jobs) {
        if (seen.get(j.id) !== j.state) {
          seen.set(j.id, j.state);
          const detail = j.failureReason ? ` (${j.failureReason}${j.exitCode !== undefined ? `, exit code ${j.exitCode}` : ''})` : '';
          say(`  ${DIM}job ${j.id}${RESET} ${j.name.padEnd(8)} ${j.state}${detail}`);
        }
      }
      if (jobs.every((j) => TERMINAL_STATES.includes(j.state))) break;
      if (Date.now() > deadline) {
        say(`${RED}the pipeline did not finish within 3 minutes${RESET}`);
        break;
      }
      if (child.exitCode !== null) {
        say(`${RED}the coordinator exited early with code ${child.exitCode}; see ${logPath}${RESET}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }

    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
    log.end();

    // Verdict.
    await mkdir(join(dir, 'traces'), { recursive: true });
    const problems: string[] = [];
    for (const j of jobs) {
      await writeFile(join(dir, 'traces', `${j.id}-${j.name}.log`), j.trace);
      const want = expected[j.name];
      if (!want) continue;
      const text = j.trace.toString('utf8');
      if (j.state !== want.state) problems.push(`${j.name}: ended ${j.state}, expected ${want.state}`);
      if (want.reason && j.failureReason !== want.reason) problems.push(`${j.name}: failure reason ${j.failureReason}, expected ${want.reason}`);
      if (want.exitCode !== undefined && j.exitCode !== want.exitCode) problems.push(`${j.name}: exit code ${j.exitCode}, expected ${want.exitCode}`);
      for (const s of want.traceHas ?? []) if (!text.includes(s)) problems.push(`${j.name}: trace lacks "${s}"`);
      for (const s of want.traceLacks ?? []) if (text.includes(s)) problems.push(`${j.name}: trace shows a secret`);
    }
    if (code !== 0) problems.push(`the coordinator exited with ${code} after SIGTERM, expected 0`);
    for (const v of fake.violations) problems.push(`GitLab protocol violation: ${v}`);

    say('');
    for (const j of jobs) {
      const ok = j.state === expected[j.name]?.state;
      say(`  ${ok ? GREEN : RED}${ok ? '✓' : '✗'}${RESET} ${j.name.padEnd(8)} ${j.state}${j.failureReason ? ` (${j.failureReason}${j.exitCode !== undefined ? `, exit code ${j.exitCode}` : ''}, as expected)` : ''}`);
    }
    say('');
    say(`coordinator log: ${logPath}`);
    say(`job traces:      ${join(dir, 'traces')}/`);
    if (problems.length) {
      say(`${RED}demo FAILED:${RESET}`);
      for (const p of problems) say(`  - ${p}`);
      return 1;
    }
    say(`${GREEN}demo passed: every job ended as expected, and the strict fake GitLab saw no protocol violation.${RESET}`);
    return 0;
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await fake.stop();
  }
}
