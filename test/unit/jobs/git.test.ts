import { describe, expect, it } from 'vitest';
import { buildPlan } from '../../../src/jobs/index.js';
import { fetchArgs, remoteOf } from '../../../src/jobs/git.js';
import { variableSet } from '../../../src/jobs/variables.js';
import { body, ctx, job } from './fixtures.js';

const sources = (j = job()): string => body(buildPlan(j, ctx()).prepare[1]!.script);

describe('get_sources', () => {
  it('fetches the payload refspecs with --depth N and the default extra flags', () => {
    expect(fetchArgs(job(), variableSet([]), false)).toEqual([
      'fetch',
      'origin',
      '--no-recurse-submodules',
      '+refs/pipelines/5:refs/pipelines/5',
      '+refs/heads/main:refs/remotes/origin/main',
      '--depth',
      '20',
      '--prune',
      '--quiet',
    ]);
    expect(sources()).toContain('Fetching changes with git depth set to 20...');
  });

  it('with depth 0 unshallows only an existing shallow clone', () => {
    const j = job();
    j.git_info.depth = 0;
    expect(fetchArgs(j, variableSet([]), true)).toContain('--unshallow');
    const s = sources(j);
    expect(s).toContain('if [ -f /home/fr/builds/group/sub/app/.git/shallow ]; then\n  git fetch origin --no-recurse-submodules');
    expect(s).toMatch(/--unshallow --prune --quiet\nelse\n {2}git fetch .* --prune --quiet\nfi/);
    expect(s).toContain('Fetching changes...');
  });

  it('honours GIT_FETCH_EXTRA_FLAGS, GIT_CLEAN_FLAGS and GIT_CHECKOUT', () => {
    const vars = variableSet([{ key: 'GIT_FETCH_EXTRA_FLAGS', value: '  --no-tags   --verbose ' }]);
    expect(fetchArgs(job(), vars, false).slice(-2)).toEqual(['--no-tags', '--verbose']);
    expect(sources()).toContain("git -c 'submodule.recurse=false' checkout -f -q 1234567890abcdef1234567890abcdef12345678\ngit clean -ffdx\n");
    expect(sources()).toContain('Checking out 12345678 as detached HEAD (ref is main)...');
    const custom = sources(job({ variables: [{ key: 'GIT_CLEAN_FLAGS', value: 'none' }, { key: 'GIT_CHECKOUT', value: 'true' }] }));
    expect(custom).not.toContain('git clean');
    const noCheckout = sources(job({ variables: [{ key: 'GIT_CHECKOUT', value: 'false' }] }));
    expect(noCheckout).not.toContain('checkout -f');
    expect(noCheckout).toContain('Skipping Git checkout');
  });

  it('defaults to clone without allow_git_fetch, and supports none/empty', () => {
    expect(sources(job({ allow_git_fetch: false }))).toContain('rm -rf /home/fr/builds/group/sub/app\n');
    expect(sources()).not.toContain('rm -rf /home/fr/builds/group/sub/app\n');
    const none = sources(job({ variables: [{ key: 'GIT_STRATEGY', value: 'none' }] }));
    expect(none).toContain('Skipping Git repository setup');
    expect(none).not.toContain('git ');
    const empty = sources(job({ variables: [{ key: 'GIT_STRATEGY', value: 'empty' }] }));
    expect(empty).toContain('rm -rf /home/fr/builds/group/sub/app\n[ -d /home/fr/builds/group/sub/app ] || mkdir -p /home/fr/builds/group/sub/app\n');
  });

  it('updates submodules per GIT_SUBMODULE_* variables', () => {
    const s = sources(
      job({
        variables: [
          { key: 'GIT_SUBMODULE_STRATEGY', value: 'recursive' },
          { key: 'GIT_SUBMODULE_DEPTH', value: '3' },
          { key: 'GIT_SUBMODULE_UPDATE_FLAGS', value: '--jobs 4' },
          { key: 'GIT_SUBMODULE_PATHS', value: 'libs/a :(exclude)libs/b' },
        ],
      }),
    );
    expect(s).toContain('Updating/initializing submodules recursively with git depth set to 3...');
    expect(s).toContain('git submodule sync --recursive\n');
    expect(s).toContain("git submodule update --init --recursive --depth 3 --jobs 4 -- libs/a ':(exclude)libs/b'\n");
    expect(sources()).toContain('Skipping Git submodules setup');
  });

  it('runs pre/post get_sources hooks around the fetch', () => {
    const s = sources(
      job({
        hooks: [
          { name: 'pre_get_sources_script', script: ['echo pre'] },
          { name: 'post_get_sources_script', script: ['echo post'] },
        ],
      }),
    );
    const pre = s.indexOf('\necho pre\n');
    const fetch = s.indexOf('git fetch');
    const post = s.indexOf('\necho post\n');
    expect(pre).toBeGreaterThan(0);
    expect(fetch).toBeGreaterThan(pre);
    expect(post).toBeGreaterThan(fetch);
  });

  it('strips credentials from the remote and scopes the helper to its origin', () => {
    expect(remoteOf('https://gitlab-ci-token:secret@gitlab.example.com:8443/g/p.git')).toEqual({
      url: 'https://gitlab.example.com:8443/g/p.git',
      credentialOrigin: 'https://gitlab.example.com:8443',
    });
    expect(sources()).toContain("--add credential.https://gitlab.example.com.helper '!f() {");
  });
});
