// download_artifacts and upload_artifacts_on_success/_on_failure (docs/gitlab-protocol.md §5). The JOB-TOKEN header goes
// to curl through a header file written with the printf builtin, so no token is ever in argv.

import { posix } from 'node:path';
import type { JobArtifact, JobDependency, JobPayload } from '../core/index.js';
import type { PlanContext } from './context.js';
import type { ProjectDirs } from './dirs.js';
import { UnsupportedJobError } from './errors.js';
import { collectArgs, relativePatterns } from './paths.js';
import { op } from './quote.js';
import type { VariableSet } from './variables.js';
import type { ShellWriter } from './writer.js';

export type ArtifactOutcome = 'success' | 'failure';
type Format = 'zip' | 'gzip' | 'raw';

const EXTENSION: Record<Format, string> = { zip: '.zip', gzip: '.gz', raw: '' };

export function dependenciesToDownload(job: JobPayload): JobDependency[] {
  return job.dependencies.filter((d) => d.artifacts_file !== undefined);
}

export function artifactsFor(job: JobPayload, outcome: ArtifactOutcome): JobArtifact[] {
  return job.artifacts.filter((a) => {
    if (a.paths.length === 0 && !a.untracked) return false;
    const when = a.when ?? 'on_success';
    return when === 'always' || (outcome === 'success' ? when === 'on_success' : when === 'on_failure');
  });
}

function formatOf(a: JobArtifact): Format {
  const f = a.artifact_format ?? 'zip';
  if (f === 'zip' || f === 'gzip' || f === 'raw') return f;
  throw new UnsupportedJobError(`unsupported artifact_format ${JSON.stringify(f)}`);
}

/** Validates every entry up front, so an unsupported format fails the plan, not the upload stage. */
export function checkArtifacts(job: JobPayload): void {
  for (const a of job.artifacts) formatOf(a);
}

/** The multipart file name, as gitlab-runner's artifacts uploader makes it (GitLab keeps it as the
 *  artifact's file name, shown for download and in later jobs' dependencies): "artifacts" for an entry
 *  without a name; otherwise the expanded name's last path element, "default" when that is empty; then the
 *  format's extension, always ("build.zip" becomes "build.zip.zip", as there). */
export function artifactFileName(expandedName: string | undefined, format: Format): string {
  let base = expandedName === undefined ? 'artifacts' : posix.basename(expandedName);
  if (base === '' || base === '.') base = 'default';
  return base + EXTENSION[format];
}

/** Upload URL with only the parameters the entry sets, in GitLab's order. */
export function uploadUrl(gitlabUrl: string, jobId: number, a: JobArtifact): string {
  const q = new URLSearchParams();
  if (a.artifact_format) q.set('artifact_format', a.artifact_format);
  if (a.artifact_type) q.set('artifact_type', a.artifact_type);
  if (a.expire_in) q.set('expire_in', a.expire_in);
  const query = q.toString();
  return `${gitlabUrl}/api/v4/jobs/${jobId}/artifacts${query ? `?${query}` : ''}`;
}

/** curl's `-F` syntax for one file part named `file`: the file name is double-quoted with `\` escapes. */
export function curlFormFile(path: string, fileName: string): string {
  const q = (s: string): string => `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  return `file=@${q(path)};filename=${q(fileName.replaceAll(/[\r\n]/g, '_'))}`;
}

function headerFile(dirs: ProjectDirs): string {
  return posix.join(dirs.tmpDir, 'job-token.header');
}

export function writeDownloadArtifacts(w: ShellWriter, job: JobPayload, ctx: PlanContext, dirs: ProjectDirs): void {
  w.use('download');
  w.use('unzip');
  w.cd(dirs.projectDir);
  const hdr = headerFile(dirs);
  const zip = posix.join(dirs.tmpDir, 'artifacts-download.zip');
  for (const dep of dependenciesToDownload(job)) {
    w.notice(`Downloading artifacts for ${dep.name} (${dep.id})...`);
    w.writePrivateFile(hdr, `JOB-TOKEN: ${dep.token}\n`);
    w.command('_fr_download', `${ctx.gitlabUrl}/api/v4/jobs/${dep.id}/artifacts`, hdr, zip);
    w.command('_fr_unzip', zip, dirs.projectDir);
    w.command('rm', '-f', zip, hdr);
  }
}

export function writeUploadArtifacts(
  w: ShellWriter,
  job: JobPayload,
  ctx: PlanContext,
  vars: VariableSet,
  dirs: ProjectDirs,
  outcome: ArtifactOutcome,
): void {
  w.use('collect');
  w.use('archive');
  w.use('upload');
  w.cd(dirs.projectDir);
  const hdr = headerFile(dirs);
  const list = posix.join(dirs.tmpDir, 'artifact-files.txt');
  w.writePrivateFile(hdr, `JOB-TOKEN: ${job.token}\n`);
  artifactsFor(job, outcome).forEach((a, i) => {
    const format = formatOf(a);
    const archive = posix.join(dirs.tmpDir, `artifacts-${i}${EXTENSION[format]}`);
    const paths = relativePatterns(w, a.paths, vars);
    const excludes = relativePatterns(w, a.exclude, vars);
    const type = a.artifact_type ?? 'archive';
    w.notice('Uploading artifacts...');
    w.command('_fr_collect', list, ...collectArgs(paths, excludes, a.untracked === true));
    w.ifCommand(op('[ -s'), list, op(']'));
    w.command('_fr_archive', format, list, archive);
    const form = curlFormFile(archive, artifactFileName(a.name ? vars.expand(a.name) : undefined, format));
    w.command('_fr_upload', uploadUrl(ctx.gitlabUrl, job.id, a), hdr, form, type);
    w.command('rm', '-f', archive);
    w.else();
    w.error('ERROR: No files to upload');
    w.endIf();
  });
  w.command('rm', '-f', hdr, list);
}
