// What a successor reads back from a machine's job records (inspectCommand's output): the trace checkpoint
// is a log of lines, and the last whole one counts.
import { describe, expect, it } from 'vitest';

import { appendSessionLine, parseInspect, parseSession, writeCheckpointCommand, writeEndRecordCommand } from '../../../src/executors/job-records.js';

const job = { job: { id: 7, token: 'job-token-of-a-test' }, startedAt: 1 };
const inspected = (ckptLines: string[]) => ['==job 7', '==job.json', JSON.stringify(job), '==session.json', '', '==trace.ckpt', ...ckptLines, ''].join('\n');
const ckpt = (stage: number, offset: number) => JSON.stringify({ stage, offset, bytes: offset, crc: 0 });

describe('job records: the trace checkpoint log', () => {
  it('takes the last checkpoint line', () => {
    const r = parseInspect(inspected([ckpt(1, 10), ckpt(2, 20)]));
    expect(r.kind === 'job' && r.record.checkpoint).toEqual({ stage: 2, offset: 20, bytes: 20, crc: 0 });
  });

  it('passes over a last line cut short, and starts from the beginning when there is none', () => {
    const cut = parseInspect(inspected([ckpt(1, 10), ckpt(2, 20).slice(0, 12)]));
    expect(cut.kind === 'job' && cut.record.checkpoint).toEqual({ stage: 1, offset: 10, bytes: 10, crc: 0 });
    const none = parseInspect(inspected([]));
    expect(none.kind === 'job' && none.record.checkpoint).toEqual({ stage: 0, offset: 0, bytes: 0, crc: 0 });
  });

  it('appends with the shell alone, and only to a job directory that is still there', () => {
    const cmd = writeCheckpointCommand("/var/lib/it's/jobs/7", { stage: 1, offset: 2, bytes: 3, crc: 4 });
    expect(cmd).toBe(`if [ -d '/var/lib/it'\\''s/jobs/7' ]; then printf '%s\\n' '{"stage":1,"offset":2,"bytes":3,"crc":4}' >> '/var/lib/it'\\''s/jobs/7/trace.ckpt'; fi`);
  });
});

describe('job records: the session log', () => {
  const rec = (seq: number) => JSON.stringify({ seq, name: `stage${seq}`, ends: [] });

  it('takes the last whole record, passing over one cut short', () => {
    expect(parseSession(`\n${rec(1)}\n\n${rec(2)}\n`)?.seq).toBe(2);
    expect(parseSession(`\n${rec(1)}\n\n${rec(2).slice(0, 15)}`)?.seq).toBe(1);
    expect(parseSession('')).toBeUndefined();
    expect(() => parseSession(rec(2).slice(0, 15))).toThrow('session.json is not a session record');
  });

  it('reads a file an older version wrote (one record, no newline), with records appended after it', () => {
    expect(parseSession(rec(3))?.seq).toBe(3);
    expect(parseSession(`${rec(3)}\n${rec(4)}\n`)?.seq).toBe(4);
  });

  it('appends each record on a line of its own, the end record too', () => {
    expect(appendSessionLine("/j/it's", rec(1))).toBe(`printf '\\n%s\\n' '${rec(1)}' >> '/j/it'\\''s/session.json'`);
    expect(writeEndRecordCommand('/j/7', [])).toBe(`[ -d '/j/7' ] || exit 0; printf '\\n%s\\n' '{"seq":1,"name":"(ended)","ends":[]}' >> '/j/7/session.json'`);
  });
});
