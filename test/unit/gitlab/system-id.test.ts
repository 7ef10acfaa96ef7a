import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deploymentIdentity, isValidSystemId } from '../../../src/gitlab/system-id.js';

const token = () => `glrt-${randomBytes(12).toString('hex')}`;

describe('deployment identity', () => {
  it('is the same for every process of one deployment, and a valid GitLab system_id', () => {
    const t = token();
    const a = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    const b = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    expect(a).toEqual(b);
    expect(isValidSystemId(a.systemId)).toBe(true);
    expect(a.systemId).toMatch(/^s_[0-9a-f]{12}$/);
    expect(a.coordinatorId).toMatch(/^ci-[0-9a-f]{12}$/);
  });

  it('differs for another fleet, GitLab or token', () => {
    const t = token();
    const base = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    const others = [
      deploymentIdentity({ fleet: 'ci2', gitlabUrl: 'https://gitlab.example.com', token: t }),
      deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://other.example.com', token: t }),
      deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: token() }),
    ];
    for (const o of others) {
      expect(o.systemId).not.toBe(base.systemId);
      expect(o.coordinatorId).not.toBe(base.coordinatorId);
    }
  });

  it('never reveals the token', () => {
    const t = token();
    const id = deploymentIdentity({ fleet: 'ci', gitlabUrl: 'https://gitlab.example.com', token: t });
    const body = t.slice('glrt-'.length);
    for (let i = 0; i + 6 <= body.length; i++) expect(JSON.stringify(id)).not.toContain(body.slice(i, i + 6));
  });

  it('accepts the system_id shapes GitLab knows', () => {
    expect(isValidSystemId('s_0123456789ab')).toBe(true);
    expect(isValidSystemId('r_AbCdEf012345')).toBe(true);
    expect(isValidSystemId('x_0123456789ab')).toBe(false);
  });
});
