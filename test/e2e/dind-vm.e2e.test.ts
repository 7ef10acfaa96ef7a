// Privileged Docker-in-Docker for real: the built CLI (`node bin/fleetrunner.js run`) with an `ec2` executor
// whose AWS is the fake EC2 of test/helpers/fake-ec2.ts, and whose instances are real VMs. RunInstances
// boots a QEMU VM (test/vm/) from exactly the user data the provider rendered from
// templates/ec2-user-data.yaml (`bakedAmi: true`: the guest image is the "AMI", with Docker and the DinD
// stand-in image baked in). The coordinator connects to the instance's PrivateIpAddress on port 22 with the
// pinned host key, waits for `docker info`, and runs a job in the docker style, privileged from config, with
// the DinD stand-in as a service (DOCKER_HOST=tcp://docker:2375). The job builds a small Dockerfile (with a
// RUN step: a container nested in the DinD service) and pushes it to the ECR stand-in (Debian's
// docker-registry with basic auth), using the login the coordinator fetched from (mocked) ECR and handed to
// the job, with no `docker login` in the job. The image is pulled back inside the job and again on this
// host, and run. The instance is then terminated: the VM powers off, QEMU exits, nothing is left.
//
// Why the built CLI can take the fake EC2: the fake lives at the SDK boundary, so the CLI is started with a
// preload (test/vm/aws-bridge-preload.mjs) that forwards each SDK command of its EC2, SSM and ECR clients
// to the fake in this process; all of the CLI's own code runs unchanged, preflight checks included.
//
// This run backs the tests that only assert `--privileged` in a command line or a config:
//   test/unit/executors/docker-args.test.ts ("carries --privileged only when configured…", "the service
//   command…", "is privileged only when the executor is configured so…"), test/e2e/cli.e2e.test.ts
//   (render-userdata of a privileged ec2 executor), test/integration/providers/ec2.test.ts (the issue's
//   privileged dind config) and test/unit/providers/ec2-user-data.test.ts (the template's text). Here the
//   privileged containers really run a nested dockerd, and the template really boots.
//
// A failure names its stage: setup, image build, launch, boot, SSH pin, cloud-init, ready, DinD, push,
// pull back, terminate (test/vm/stages.ts). The figures (launch → SSH → cloud-init → ready, pickup on the VM,
// the job's steps) are printed and written to bench/results/vm-dind.json for `npm run bench`.
//
// Opt-in with FLEETRUNNER_VM_TEST=1 (.ci/run opts in); without it the file says it is skipped and why. Asked
// for, it needs root on x86-64 Linux (network namespace, guest image build) and 2.5 GB of free memory, and
// fails in its setup stage, naming what is missing, on a host without them. `npm test` runs it in a phase of
// its own after every other test (vitest.config.ts): beside the suite's e2e tests, emulated CPUs and real
// sshd/dockerd tests starved each other. The guest image is cached in /var/cache/fleetrunner-vm (see
// test/vm/guest-image.ts): the first run builds it (about 3-5 min), later ones boot at once.
// Run alone: FLEETRUNNER_VM_TEST=1 npx vitest run test/e2e/dind-vm.e2e.test.ts (as root)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FakeGitLab, type JobView } from '../../src/fakegitlab/index.js';
import { ensureDocker } from '../helpers/docker-images.js';
import { startAwsBridge, type AwsBridge } from '../vm/aws-bridge.js';
import { startCli, type CliProcess } from '../vm/cli-process.js';
import { Figures, VM_FIGURES_FILE } from '../vm/figures.js';
import { DIND_IMAGE, ensureGuestImage, isGuestImageCached, type GuestImage } from '../vm/guest-image.js';
import { startRegistry, type Registry } from '../vm/registry.js';
import { VmStageError, inStage, tail, type VmStage } from '../vm/stages.js';
import { createSubnet, subnetExists, type Subnet } from '../vm/subnet.js';
import { VmEc2 } from '../vm/vm-ec2.js';

const ECR = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const REPOSITORY = 'fleetrunner/vm-e2e';

// Opt-in: it boots a QEMU VM under software emulation, 2.5-4 min with a cached guest image and about 3 min more
// to build one. Once asked for, a host that cannot run it fails the setup stage rather than skipping: a CI
// run that opted in must not turn green without the VM.
const skipReason =
  process.env.FLEETRUNNER_VM_TEST === '1' ? undefined : 'FLEETRUNNER_VM_TEST is not 1 (opt-in: as root it boots a QEMU VM, 2.5-4 min, plus about 3 to build its image the first time; .ci/run opts in)';
if (skipReason) console.warn(`dind-vm.e2e: the EC2 stand-in VM phase is skipped: ${skipReason}`);

const log = (line: string) => process.stderr.write(`[dind-vm] ${line}\n`);

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Setup: the platform, root, the programs the run needs (`.ci/run` and scripts/ensure-setup.mjs install them) and memory. */
function checkHost(needImageBuild: boolean): void {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new VmStageError('setup', `needs x86-64 Linux (this is ${process.platform}/${process.arch})`);
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) throw new VmStageError('setup', 'needs root (a network namespace for the VM subnet, mmdebstrap for the guest image)');
  const needed: Array<[string, string]> = [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['qemu-img', 'qemu-utils'],
    ['genisoimage', 'genisoimage'],
    ['docker-registry', 'docker-registry'],
    ['htpasswd', 'apache2-utils'],
    ['ip', 'iproute2'],
    ['docker', 'docker.io'],
    ...(needImageBuild ? ([['mmdebstrap', 'mmdebstrap'], ['mkfs.ext4', 'e2fsprogs'], ['unshare', 'util-linux']] as Array<[string, string]>) : []),
  ];
  const missing = [...new Set(needed.filter(([c]) => !have(c)).map(([, p]) => p))];
  if (missing.length) throw new VmStageError('setup', `missing programs; install: apt-get install --no-install-recommends ${missing.join(' ')} (bash .ci/run, or node scripts/ensure-setup.mjs --with-docker as root)`);
  const available = Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  if (available < 2.5 * 2 ** 30) throw new VmStageError('setup', `the VM needs about 2.5 GB of memory; ${(available / 2 ** 30).toFixed(1)} GB is available`);
}

/** The host's docker CLI, asynchronously: the registry proxy it talks to lives in this process's event loop. */
function hostDocker(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', (e) => reject(new Error(`cannot start "docker ${args.join(' ')}" on this host: ${e.message} (PATH=${process.env.PATH ?? ''})`, { cause: e })));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`docker ${args.join(' ')}: exit ${code}: ${(err || out).trim()}`));
    });
    child.stdin.end(input ?? '');
  });
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `stat -c %y` output ("2026-12-06 20:00:52.696316576 +0000") → ms since the epoch. */
function guestTime(text: string, marker: string): number | undefined {
  const m = new RegExp(`${marker} (\\d{4}-\\d\\d-\\d\\d) (\\d\\d:\\d\\d:\\d\\d)\\.(\\d{3})\\d* ([+-]\\d{4})`).exec(text);
  if (!m) return undefined;
  return Date.parse(`${m[1]}T${m[2]}.${m[3]}${m[4]!.slice(0, 3)}:${m[4]!.slice(3)}`);
}

const root = skipReason ? '' : mkdtempSync(join(tmpdir(), 'fr-dind-vm-'));
let image: GuestImage | undefined;
let subnet: Subnet | undefined;
let registry: Registry | undefined;
let vmEc2: VmEc2 | undefined;
let bridge: AwsBridge | undefined;
let gitlab: FakeGitLab | undefined;
let cli: CliProcess | undefined;
const hostImages: string[] = [];
let mainPassed = false;
/** When the setup began: the phase's whole length goes into the figures. */
let phaseStartedAt = 0;

afterAll(async () => {
  if (skipReason) return;
  await cli?.kill();
  await vmEc2?.killAll();
  await registry?.stop();
  subnet?.destroy();
  await bridge?.close();
  await gitlab?.stop();
  for (const ref of hostImages) spawnSync('docker', ['image', 'rm', '-f', ref], { stdio: 'ignore' });
  if (process.env.FLEETRUNNER_VM_KEEP) log(`kept ${root} (FLEETRUNNER_VM_KEEP)`);
  else rmSync(root, { recursive: true, force: true });
}, 120_000);

describe.skipIf(skipReason !== undefined).sequential('EC2 stand-in VM: privileged DinD build and push through the built CLI', () => {
  beforeAll(async () => {
    phaseStartedAt = Date.now();
    await inStage('setup', () => {
      checkHost(!isGuestImageCached());
      ensureDocker();
    });
    image = await inStage('image build', () => ensureGuestImage({ log }));
    log(`guest image ${image.key} ${image.cached ? '(cached)' : `built in ${Math.round(image.buildMs / 1000)} s`}: ${image.dir}`);
    subnet = await inStage('setup', () => createSubnet());
    registry = await inStage('setup', () => startRegistry(subnet!, join(root, 'registry')));
    vmEc2 = new VmEc2({ image, subnet, root: join(root, 'vms'), log });
    const ecr = new ECRClient({ region: 'eu-west-1' });
    mockClient(ecr)
      .on(GetAuthorizationTokenCommand)
      .callsFake(() => ({
        authorizationData: [
          { authorizationToken: Buffer.from(`${registry!.user}:${registry!.password}`).toString('base64'), expiresAt: new Date(Date.now() + 12 * 3600_000), proxyEndpoint: `https://${ECR}` },
        ],
      }));
    bridge = await startAwsBridge({ ec2: vmEc2.fake.ec2, ssm: vmEc2.fake.ssm, ecr });
    gitlab = new FakeGitLab({ traceUpdateIntervalS: 1 });
    await gitlab.start();
  }, 18 * 60_000); // the image build (at most 15 min) and the setup around it

  it('boots an instance from the rendered user data, runs a privileged DinD build and ECR-style push on it, and terminates it', async () => {
    const runner = gitlab!.addRunner();
    const configPath = join(root, 'fleetrunner.yaml');
    writeFileSync(
      configPath,
      [
        'gitlab:',
        `  url: ${gitlab!.url}`,
        '  token: ${FR_VM_TOKEN}',
        'concurrent: 1',
        'checkInterval: 1s',
        `stateDir: ${join(root, 'state')}`,
        'log: { level: info, format: json }',
        'executors:',
        '  - name: dind',
        '    provider: ec2',
        '    style: docker',
        '    privileged: true                    # build and service containers; the job cannot ask for it',
        '    maxMachines: 1                      # one VM at a time on 2 cores',
        '    bootTimeout: 10m                    # TCG: a software-emulated boot, not a Nitro one (4 min on a starved host)',
        `    match: { services: ["${DIND_IMAGE.split(':')[0]}"] }`,
        '    docker:',
        `      defaultImage: ${DIND_IMAGE}`,
        '      pullPolicy: if-not-present        # baked into the "AMI"; there is no Docker Hub here',
        '      waitForServicesTimeout: 5m',
        `      extraHosts: ["${ECR}:10.0.2.2"]   # the ECR stand-in, as the VMs reach it`,
        '    ecr:',
        `      pushRegistries: [${ECR}]`,
        '    ec2:',
        '      region: eu-west-1',
        '      subnets: [subnet-0aaa1111]',
        '      securityGroups: [sg-0ccc3333]',
        '      instanceTypes: [c6i.xlarge]',
        '      bakedAmi: true',
        '',
      ].join('\n'),
    );
    const message = `built in DinD on the EC2 stand-in ${Date.now().toString(36)}`;
    const stages: VmStage[] = [];
    let job: JobView | undefined;
    const figures = new Figures();
    figures.addImageBuild(image!);

    /** The stage a failure belongs to, from what the VM, the coordinator and the trace show. */
    const diagnose = (why: string): VmStageError => {
      const vm = [...vmEc2!.vms.values()].at(-1);
      const cliTail = `coordinator log:\n${tail(cli?.output() ?? '', 15)}`;
      if (!vm) return new VmStageError('launch', `${why}; no RunInstances reached the fake EC2 (calls: ${bridge!.calls.join(', ') || 'none'})\n${cliTail}`);
      const consoleTail = `console of ${vm.o.id}:\n${tail(vm.console(), 25)}`;
      if (vmEc2!.bootErrors.length) return new VmStageError('boot', `${why}; ${vmEc2!.bootErrors.map((b) => `${b.id}: ${b.error}`).join('; ')}\n${consoleTail}`);
      const t = vm.timeline;
      if (t.sshBannerAt === undefined) return new VmStageError('boot', `${why}; no SSH banner from ${vm.o.ip}:22 (QEMU ${t.exitedAt ? `exited: ${t.exit}` : 'running'})\n${consoleTail}`);
      if (!t.firstHostKeyPinned) return new VmStageError('SSH pin', `${why}; the first SSH banner presented a host key other than the one in the user data\n${consoleTail}`);
      if (t.cloudInitDoneAt === undefined) return new VmStageError('cloud-init', `${why}; cloud-init never printed its "finished" line\n${consoleTail}`);
      const ready = cli?.logLines().some((l) => l.msg === 'EC2 instance ready');
      if (!ready) return new VmStageError('ready', `${why}; the coordinator never found the instance ready (SSH with the pinned key + docker info)\n${cliTail}\n${consoleTail}`);
      const trace = job?.traceText ?? '';
      const marked = [...trace.matchAll(/^fr-vm-stage: (DinD|push|pull back)$/gm)].map((m) => m[1] as VmStage);
      const stage = marked.at(-1) ?? 'DinD';
      return new VmStageError(stage, `${why}; job trace:\n${tail(trace, 40)}\n${cliTail}`);
    };

    const bridgeEnv = bridge!.env;
    cli = startCli({ config: configPath, nodeArgs: bridge!.nodeArgs, env: { ...bridgeEnv, FR_VM_TOKEN: runner.token } });
    const project = await gitlab!.createProject({ path: 'infra/dind-vm', files: { 'README.md': 'built on a VM\n' } });
    const pipeline = await gitlab!.createPipeline(project, [
      {
        name: 'dind-build-push',
        image: DIND_IMAGE,
        services: [{ name: DIND_IMAGE, alias: 'docker', command: [`--insecure-registry=${ECR}`] }],
        // Sources are not fetched: the fake GitLab hands out 127.0.0.1 clone URLs, which mean the VM itself.
        git_strategy: 'none',
        variables: { DOCKER_HOST: 'tcp://docker:2375', DOCKER_TLS_CERTDIR: '', ECR_REGISTRY: ECR, MESSAGE: message },
        script: [
          'touch /tmp/fr-start && echo "fr-vm-pickup-at $(stat -c %y /tmp/fr-start)"',
          'echo "fr-vm-stage: DinD"',
          'grep CapEff /proc/self/status',
          'echo "DOCKER_HOST=$DOCKER_HOST DOCKER_CONFIG=$DOCKER_CONFIG"',
          't=$(date +%s); i=0; until docker info >/dev/null 2>&1; do i=$((i+1)); if [ $i -gt 90 ]; then echo "the DinD service never answered"; exit 1; fi; sleep 2; done; echo "fr-vm-timing dind-wait $(( $(date +%s) - t ))"',
          'docker version --format "fr-vm-docker client {{.Client.Version}} server {{.Server.Version}}"',
          'docker info --format "fr-vm-dind storage {{.Driver}} cgroup v{{.CgroupVersion}}"',
          'mkdir -p ctx && cp /usr/bin/busybox ctx/busybox && echo "$MESSAGE" > ctx/message.txt',
          `printf '%s\\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'COPY message.txt /message.txt' 'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo nested-run-on-$(/bin/busybox uname -r) > /built.txt"]' 'CMD ["/bin/busybox", "cat", "/message.txt", "/built.txt"]' > ctx/Dockerfile`,
          'IMAGE="$ECR_REGISTRY/' + REPOSITORY + ':$CI_JOB_ID"',
          // One command a line: the job shell stops at the first that fails (a failure inside `a && b` would not stop it).
          't=$(date +%s)',
          'docker build -t "$IMAGE" ctx',
          'echo "fr-vm-timing build $(( $(date +%s) - t ))"',
          'docker run --rm "$IMAGE"',
          'echo "fr-vm-stage: push"',
          't=$(date +%s)',
          'docker push "$IMAGE"',
          'echo "fr-vm-timing push $(( $(date +%s) - t ))"',
          'echo "fr-vm-stage: pull back"',
          't=$(date +%s)',
          'docker rmi "$IMAGE"',
          'docker pull "$IMAGE"',
          'echo "fr-vm-timing pull $(( $(date +%s) - t ))"',
          'docker run --rm "$IMAGE" > pulled.txt',
          'sed "s/^/pulled-back: /" pulled.txt',
          'echo "fr-vm-stage: done"',
          'touch /tmp/fr-end && echo "fr-vm-end-at $(stat -c %y /tmp/fr-end)"',
        ],
      },
    ]);
    const jobId = pipeline.jobIds[0]!;
    // Handed out → final state: 2.5-4 min with the VM alone on 2 cores, 9-10.5 min beside 12 runnable processes
    // (QEMU niced). The waits only decide when a stuck run is diagnosed; a passing run never waits them out.
    try {
      job = await gitlab!.waitForJobState(jobId, ['success', 'failed', 'canceled'], 15 * 60_000);
    } catch (e) {
      job = gitlab!.job(jobId);
      throw diagnose(`the job did not finish (${(e as Error).message}; state ${job.state})`);
    }
    if (job.state !== 'success') throw diagnose(`the job ended ${job.state} (${job.failureReason ?? 'no reason'})`);
    stages.push('launch', 'boot', 'SSH pin', 'cloud-init', 'ready', 'DinD', 'push', 'pull back');

    const trace = job.traceText.replace(/\x1b\[[0-9;]*m/g, '');
    const vm = [...vmEc2!.vms.values()].at(-1)!;
    const t = vm.timeline;
    // The VM: the pinned host key from the first banner, cloud-init done, the template's credential-helper fallback.
    expect(vmEc2!.vms.size, 'one instance, booted once').toBe(1);
    expect(t.firstHostKeyPinned, 'the first SSH banner served the pinned host key').toBe(true);
    expect(t.cloudInitDoneAt).toBeDefined();
    const console_ = vm.console();
    expect(console_.includes('docker-credential-ecr-login not found'), 'the template noticed the missing ECR credential helper').toBe(true);
    expect(/schema\.py\[WARNING\]: Invalid cloud-config/.test(console_), "cloud-init's schema accepted the user data and the image's config").toBe(false);
    const launched = vmEc2!.fake.instances.get(vm.o.id)!;
    expect(launched.userData.includes('dnf install -y --setopt'), 'bakedAmi: true drops the install section').toBe(false);
    expect(launched.input.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    expect(JSON.stringify(launched.input).includes(runner.token), 'no runner token in RunInstances').toBe(false);
    // The job: privileged (every capability), a nested dockerd, a RUN step in it, push with the handed-over login.
    expect(trace).toMatch(/CapEff:\s+0000003fffffffff|CapEff:\s+000001ffffffffff/);
    expect(trace).toContain(`DOCKER_HOST=tcp://docker:2375 DOCKER_CONFIG=/fleetrunner/docker-config`);
    expect(trace).toMatch(/fr-vm-dind storage overlay2 cgroup v2/);
    expect(trace).toContain(message);
    expect(trace).toMatch(/pulled-back: nested-run-on-\S+/);
    expect(trace).toContain(`pulled-back: ${message}`);
    expect(trace).not.toContain(registry!.password);
    expect(trace).not.toContain(Buffer.from(`${registry!.user}:${registry!.password}`).toString('base64'));
    expect(bridge!.calls).toContain('ecr:GetAuthorizationTokenCommand');
    // The machine's own (unprivileged) containers work too: handing the files back ran, the machine ended clean.
    expect(trace.includes('could not give the job'), "the job's files were handed back to the machine user").toBe(false);
    expect(cli!.logLines().filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg)).toEqual([]);

    // Pulled back on this host, from the registry itself, with the same login; the registry refuses anonymous pulls.
    await inStage('pull back', async () => {
      const tag = String(job!.id);
      const anonymous = await fetch(`${registry!.url}/v2/${REPOSITORY}/manifests/${tag}`);
      expect(anonymous.status).toBe(401);
      const authorized = await fetch(`${registry!.url}/v2/${REPOSITORY}/manifests/${tag}`, {
        headers: { authorization: `Basic ${Buffer.from(`${registry!.user}:${registry!.password}`).toString('base64')}`, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      expect(authorized.status).toBe(200);
      const proxy = await registry!.hostProxy();
      const ref = `${proxy}/${REPOSITORY}:${tag}`;
      const config = mkdtempSync(join(root, 'docker-config-'));
      await hostDocker(['--config', config, 'login', proxy, '-u', registry!.user, '--password-stdin'], registry!.password);
      hostImages.push(ref);
      await hostDocker(['--config', config, 'pull', ref]);
      const out = await hostDocker(['run', '--rm', '--network', 'none', ref]);
      expect(out).toContain(message);
      expect(out).toMatch(/nested-run-on-/);
      await hostDocker(['image', 'rm', ref]);
      hostImages.pop();
    });

    // Terminated: the VM powered off, QEMU gone, the instance `terminated`, then a clean stop.
    await inStage('terminate', async () => {
      await until('the VM powered off after TerminateInstances', () => vmEc2!.running().length === 0, 120_000);
      expect(vmEc2!.fake.terminateInputs.flat()).toContain(vm.o.id);
      expect(alive(vm.pid), 'QEMU process gone').toBe(false);
      expect(t.exit).toBe('acpi');
      expect(vmEc2!.fake.live().map((i) => `${i.id} ${i.state}`)).toEqual([]);
      expect(await cli!.stop()).toBe(0);
      expect(gitlab!.violations).toEqual([]);
    });
    stages.push('terminate');

    // Figures.
    const readyLine = cli!.logLines().find((l) => l.msg === 'EC2 instance ready');
    const readyAt = typeof readyLine?.time === 'string' ? Date.parse(readyLine.time) : typeof readyLine?.time === 'number' ? readyLine.time : undefined;
    const pickupAt = guestTime(trace, 'fr-vm-pickup-at');
    const endAt = guestTime(trace, 'fr-vm-end-at');
    const timing = (name: string) => {
      const m = new RegExp(`^fr-vm-timing ${name} (\\d+)$`, 'm').exec(trace);
      return m ? Number(m[1]) : undefined;
    };
    figures.addSpan('launch_to_qemu_running_s', t.launchedAt, t.qemuStartedAt, 'RunInstances → QEMU running (instance `running`)');
    figures.addSpan('launch_to_ssh_pinned_s', t.launchedAt, t.sshBannerAt, 'RunInstances → first SSH banner, with the pinned key');
    figures.addSpan('launch_to_cloud_init_done_s', t.launchedAt, t.cloudInitDoneAt, 'RunInstances → cloud-init finished (console)');
    figures.addSpan('launch_to_ready_s', t.launchedAt, readyAt, 'RunInstances → coordinator: SSH pinned + docker info');
    figures.addSpan('pickup_on_vm_s', job.startedAt, pickupAt, 'job handed out → first command in the job container');
    figures.addSpan('ready_to_first_command_s', readyAt, pickupAt, 'ready → first command (job network, DinD service up)');
    figures.add('dind_service_wait_s', timing('dind-wait'), 's', 'first command → nested dockerd answering');
    figures.add('docker_build_s', timing('build'), 's', 'docker build (COPY + a nested RUN) in DinD');
    figures.add('docker_push_s', timing('push'), 's', 'docker push to the registry with the handed-over login');
    figures.add('docker_pull_back_s', timing('pull'), 's', 'docker rmi + pull back');
    figures.addSpan('dind_job_script_s', pickupAt, endAt, 'first → last command of the DinD job');
    figures.addSpan('dind_job_total_s', job.startedAt, job.finishedAt, 'job handed out → final state (boot included)');
    figures.addSpan('terminate_to_poweroff_s', t.powerOffAt, t.exitedAt, 'TerminateInstances → QEMU exited (ACPI power-off)');
    figures.addSpan('instance_lifetime_s', t.launchedAt, t.exitedAt, 'RunInstances → QEMU exited');
    figures.addSpan('whole_test_s', phaseStartedAt, Date.now(), `the whole VM test, setup to terminated (${image!.cached ? 'cached image' : 'image built in it'})`);
    figures.write({ imageKey: image!.key, imageCached: image!.cached, imageBuiltAt: image!.manifest.builtAt, stages });
    console.log(`EC2 stand-in VM figures (also in ${VM_FIGURES_FILE}):\n${figures.table()}`);
    expect(stages).toEqual(['launch', 'boot', 'SSH pin', 'cloud-init', 'ready', 'DinD', 'push', 'pull back', 'terminate']);
    mainPassed = true;
  }, 20 * 60_000);

  it('leaves nothing behind: no QEMU, registry or subnet', async (ctx) => {
    if (!mainPassed) ctx.skip(); // the run above failed: afterAll cleans up by force
    expect(vmEc2!.running().map((v) => v.o.id)).toEqual([]);
    for (const vm of vmEc2!.vms.values()) expect(alive(vm.pid), `QEMU of ${vm.o.id}`).toBe(false);
    await registry!.stop();
    const registryPid = registry!.pid;
    const ns = subnet!.ns;
    subnet!.destroy();
    expect(alive(registryPid)).toBe(false);
    expect(subnetExists(ns)).toBe(false);
    expect(hostImages).toEqual([]);
  }, 60_000);
});
