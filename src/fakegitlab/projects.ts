// Projects and pipelines backed by real bare repositories: the git side of FakeGitLab's test API.
import { join } from 'node:path';
import type { CiState } from './ci-state.js';
import { commitFiles, commitMessage, initBare, parentOf, resolveRef, updateRef } from './git-repo.js';
import type { PipelineRecord, ProjectRecord } from './records.js';
import type { FileContent, JobSpec, PipelineOptions } from './types.js';

export async function createProject(
  ci: CiState,
  reposDir: string,
  spec: { path: string; files: Record<string, FileContent>; branch?: string; description?: string },
): Promise<{ project: ProjectRecord; sha: string }> {
  if (!/^[\w.-]+(\/[\w.-]+)+$/.test(spec.path)) throw new Error(`project path must look like group/name: ${spec.path}`);
  if (ci.projectByPath(spec.path)) throw new Error(`project ${spec.path} exists`);
  const branch = spec.branch ?? 'main';
  const bareDir = join(reposDir, `${spec.path}.git`);
  await initBare(bareDir, branch);
  const slash = spec.path.lastIndexOf('/');
  const project: ProjectRecord = {
    id: ci.newProjectId(),
    path: spec.path,
    name: spec.path.slice(slash + 1),
    namespace: spec.path.slice(0, slash),
    bareDir,
    defaultBranch: branch,
    commitCount: 0,
    ...(spec.description === undefined ? {} : { description: spec.description }),
  };
  const { sha } = await commitFiles(bareDir, branch, spec.files, 'Initial commit\n', ++project.commitCount);
  ci.projects.set(project.id, project);
  return { project, sha };
}

export async function addCommit(
  project: ProjectRecord,
  files: Record<string, FileContent>,
  opts: { branch?: string; message?: string },
): Promise<string> {
  const branch = opts.branch ?? project.defaultBranch;
  const result = await commitFiles(project.bareDir, branch, files, `${opts.message ?? 'Update files'}\n`, ++project.commitCount);
  return result.sha;
}

export async function addTag(project: ProjectRecord, name: string, sha?: string): Promise<string> {
  const target = sha ?? (await resolveRef(project.bareDir, `refs/heads/${project.defaultBranch}`));
  await updateRef(project.bareDir, `refs/tags/${name}`, target);
  return target;
}

export async function createPipeline(
  ci: CiState,
  now: number,
  project: ProjectRecord,
  jobs: JobSpec[],
  opts: PipelineOptions,
): Promise<PipelineRecord> {
  const refName = opts.ref ?? project.defaultBranch;
  const refType = opts.refType ?? 'branch';
  const sha = await resolveRef(project.bareDir, refType === 'tag' ? `refs/tags/${refName}` : `refs/heads/${refName}`);
  const id = ci.newPipelineId();
  // GitLab keeps a ref per pipeline; the first refspec of every job fetches it.
  await updateRef(project.bareDir, `refs/pipelines/${id}`, sha);
  return ci.addPipeline(
    {
      id,
      projectId: project.id,
      ref: refName,
      refType,
      sha,
      beforeSha: await parentOf(project.bareDir, sha),
      commitMessage: await commitMessage(project.bareDir, sha),
      createdAt: now,
      ...(opts.name === undefined ? {} : { name: opts.name }),
    },
    jobs,
    opts.stages,
  );
}
