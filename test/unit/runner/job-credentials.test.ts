// The runner's side of the file form: the first attempt starts from the session the job was given, a run
// again on a new machine from the newest one, a continued job from what its machine holds; renewals ask the
// job's role again.
import { describe, expect, it } from 'vitest';

import type { AwsSession, JobCredentials } from '../../../src/core/aws-credentials.js';
import { JobCredentialFeed } from '../../../src/runner/job-credentials.js';
import { jobPayload } from '../../helpers/job-payload.js';

const session = (n: number): AwsSession => ({ accessKeyId: `ASIA${n}`, secretAccessKey: `s${n}`, sessionToken: `t${n}`, expiresAt: n * 1000 });

describe('JobCredentialFeed', () => {
  it('hands each attempt the newest session and renews through the job\'s role', async () => {
    let n = 1;
    const asked: number[] = [];
    const get = async (job: { id: number }): Promise<JobCredentials> => {
      asked.push(job.id);
      const s = session(++n);
      return { role: 'r', form: 'file', session: s, expiresAt: s.expiresAt, variables: [] };
    };
    const job = jobPayload({ id: 5 } as Parameters<typeof jobPayload>[0]);
    const feed = new JobCredentialFeed(get, job, session(1));
    expect((await feed.forAttempt(false)).session).toEqual(session(1));
    expect(asked).toEqual([]);
    const first = await feed.forAttempt(false);
    expect(await first.renew()).toEqual(session(2));
    expect((await feed.forAttempt(false)).session).toEqual(session(2));
    expect((await feed.forAttempt(true)).session).toBeUndefined();
    // A continued job moved to a new machine (an interruption) needs a session of its own first.
    const continued = new JobCredentialFeed(get, job, undefined);
    expect((await continued.forAttempt(false)).session).toEqual(session(3));
    expect(asked).toEqual([5, 5]);
  });
});
