import { describe, expect, it } from 'vitest';
import { artifactFileName } from '../../../src/jobs/artifacts.js';

// gitlab-runner's artifacts uploader (commands/helpers/artifacts_uploader.go): its --name defaults to
// "artifacts" and is given only when the entry has one; filepath.Base of it, "default" when empty; then the
// format's extension, always.
describe('artifact upload file name', () => {
  it.each([
    [undefined, 'zip', 'artifacts.zip'],
    ['my-7', 'zip', 'my-7.zip'],
    ['build.zip', 'zip', 'build.zip.zip'],
    ['junit.xml', 'gzip', 'junit.xml.gz'],
    ['out/dir/report', 'zip', 'report.zip'],
    ['trailing/', 'zip', 'trailing.zip'],
    ['', 'zip', 'default.zip'], // a name that expanded to nothing
    ['metrics.txt', 'raw', 'metrics.txt'],
  ] as const)('%s as %s → %s', (name, format, expected) => {
    expect(artifactFileName(name, format)).toBe(expected);
  });
});
